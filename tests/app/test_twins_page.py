"""Same mailbox twice on the pages: the form warns before saving, the list after it."""

from __future__ import annotations

from streamlit.testing.v1 import AppTest

from tests.app.conftest import fill, open_new_mailbox, press_ok
from tests.conftest import SIGN_IN_PATHS

WARNING = "Same mailbox as “Support POP3” (ID 1): two pollers on one mailbox make duplicate tickets"


def test_the_same_mailbox_saved_twice_is_saved_with_a_warning(app: AppTest) -> None:
    open_new_mailbox(app)
    fill(app, SIGN_IN_PATHS["password"])
    press_ok(app)
    assert [w.value for w in app.warning] == []

    open_new_mailbox(app)
    twin = {
        **SIGN_IN_PATHS["password"],
        "name": "Support IMAP",
        "mailbox_type": "IMAP",
        "host": "POP.example.com.",
        "account": "Support@Example.com",
    }
    fill(app, twin)
    assert WARNING in [w.value for w in app.warning]  # before saving

    press_ok(app)
    assert [t.value for t in app.title] == ["Mailboxes"]
    assert [s.value for s in app.success] == ["Mailbox “Support IMAP” saved with ID 2."]
    assert [w.value for w in app.warning] == [WARNING]
    frame = app.dataframe[0].value.set_index("ID")
    assert frame.loc[2, "Same mailbox"] == "Same mailbox twice (as ID 1)"
    assert frame.loc[1, "Same mailbox"] == "Same mailbox twice (as ID 2)"

    open_new_mailbox(app)
    fill(app, {**SIGN_IN_PATHS["password"], "name": "Sales", "account": "sales@example.com"})
    press_ok(app)
    assert [w.value for w in app.warning] == []  # another account on one server: not a twin
    app.checkbox(key="mailboxes.twins").check()
    app.run()
    assert sorted(app.dataframe[0].value["ID"]) == [1, 2]
    assert app.query_params.get("twins") == "1"
