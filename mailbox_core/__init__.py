"""Mailbox Manager core: models, validation, secrets and storage. Never imports streamlit."""
