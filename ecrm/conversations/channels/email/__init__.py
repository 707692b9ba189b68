"""The email channel: SMTP replies, and inbound mail by IMAP polling, an MTA pipe and an HTTP endpoint."""
