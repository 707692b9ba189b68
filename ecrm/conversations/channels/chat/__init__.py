"""Live chat: the embeddable widget's HTTP endpoints, the visitor and agent WebSocket consumers, signed
visitor sessions, agent presence and the chat adapter (see docs/chat.md)."""
