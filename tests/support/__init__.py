"""Test support: real local servers (Slack Web API, SMTP) the tests run the real clients against."""
