from django.apps import AppConfig


class KnowledgeConfig(AppConfig):
    name = "ecrm.knowledge"
    label = "knowledge"
    verbose_name = "Knowledge base"
