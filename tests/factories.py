import factory
from django.contrib.auth import get_user_model

from agents.models import Agent


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()
        django_get_or_create = ("username",)

    username = factory.Sequence(lambda n: f"user{n}")
    password = factory.django.Password("pw-123456-long")


class AgentFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Agent

    name = factory.Sequence(lambda n: f"agent-{n}")
    url = factory.Sequence(lambda n: f"http://127.0.0.1:9{n % 1000:03d}/")
    description = "An agent for tests."
