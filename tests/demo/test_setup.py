"""The quick start's demo setup: one agent per demo skill (think and ask with their streaming twins too)."""

import pytest

from agents.models import Agent
from demo.agent import SKILLS, STREAMING_SKILLS
from demo.setup import DEMO_SKILLS, SAMPLE_WORKFLOW_ID, demo_setup
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


def test_every_demo_skill_and_streaming_twin_is_registered_at_its_path():
    demo_setup(user=UserFactory(), agent_url="http://127.0.0.1:9100/")
    agents = dict(Agent.objects.live().filter(name__startswith="demo-").values_list("name", "url"))
    assert agents == {f"demo-{skill}": f"http://127.0.0.1:9100/{skill}" for skill in DEMO_SKILLS}
    # Every skill of the demo agent, and the streaming agents it serves at /<skill>-stream.
    assert set(DEMO_SKILLS) == set(SKILLS) | {f"{skill}-stream" for skill in STREAMING_SKILLS}


def test_a_second_setup_re_points_the_agents_and_keeps_the_sample():
    user = UserFactory()
    first = demo_setup(user=user, agent_url="http://127.0.0.1:9100")
    again = demo_setup(user=user, agent_url="http://10.0.0.5:9100")
    assert first.id == again.id == SAMPLE_WORKFLOW_ID
    assert Agent.objects.live().get(name="demo-think-stream").url == "http://10.0.0.5:9100/think-stream"
    assert Agent.objects.live().filter(name__startswith="demo-").count() == len(DEMO_SKILLS)
