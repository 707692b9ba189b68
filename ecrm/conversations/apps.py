from django.apps import AppConfig


class ConversationsConfig(AppConfig):
    name = "ecrm.conversations"
    label = "conversations"
    verbose_name = "Conversations"

    def ready(self) -> None:
        from ecrm.customers.timeline import register_timeline_source

        from . import channels
        from .timeline import conversations_source

        channels.load_adapters()
        register_timeline_source("conversations.messages", conversations_source, scoped=True)
