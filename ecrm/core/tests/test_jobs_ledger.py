"""The ledger's rules, in-process: a job commits together with its 'done' mark or not at all; a job whose
claim was taken away rolls back; a done or running job is not run again; failures keep retries and the
dead-letter list working."""

from __future__ import annotations

import pytest
from huey import MemoryHuey
from huey.exceptions import CancelExecution

from ecrm.core import jobs
from ecrm.core.models import JobClaim, JobState, Team

huey = MemoryHuey("ledger-test", immediate=False)
RAN: list[str] = []


@huey.task(retries=1)
def make_team(name: str) -> str:
    RAN.append(name)
    Team.objects.create(name=name)
    return name


def _run(task, fn=None):
    body = fn or make_team.func
    return jobs.run_claimed(body, task, huey, task.args, task.kwargs, atomic=True)


@pytest.fixture(autouse=True)
def _clean():
    RAN.clear()
    huey.flush()


def test_a_job_is_recorded_when_sent_claimed_and_done_with_its_writes(db):
    task = make_team.s("Returns desk")
    jobs.record_enqueued(task, huey)
    claim = JobClaim.objects.get(task_id=task.id)
    assert (claim.state, claim.attempt, claim.args) == (JobState.QUEUED, 0, ["Returns desk"])
    assert claim.task_name.endswith("make_team")

    assert _run(task) == "Returns desk"
    claim.refresh_from_db()
    assert (claim.state, claim.attempt, claim.pid) == (JobState.DONE, 1, jobs.os.getpid())
    assert claim.worker == jobs.worker_id() and claim.finished_at is not None
    assert Team.objects.filter(name="Returns desk").count() == 1

    # The same message delivered again (a recovery that raced a slow worker): skipped, not run twice.
    assert _run(task) is None
    assert RAN == ["Returns desk"] and Team.objects.filter(name="Returns desk").count() == 1


def test_a_job_whose_claim_was_taken_away_rolls_back_its_writes(db):
    task = make_team.s("Warehouse")
    jobs.record_enqueued(task, huey)

    def body(name):
        Team.objects.create(name=name)
        # Meanwhile recovery decided this worker was dead and gave the job to another one.
        JobClaim.objects.filter(task_id=task.id).update(state=JobState.REQUEUED, worker="other:1:x")
        return name

    with pytest.raises(CancelExecution):
        _run(task, body)
    assert not Team.objects.filter(name="Warehouse").exists()  # the other worker's run is the one


def test_a_failing_job_rolls_back_and_is_marked_for_retry_then_failed(db):
    task = make_team.s("Finance")
    jobs.record_enqueued(task, huey)

    def failing(name):
        Team.objects.create(name=name)
        raise RuntimeError("ERP down")

    with pytest.raises(RuntimeError):
        _run(task, failing)
    claim = JobClaim.objects.get(task_id=task.id)
    assert claim.state == JobState.RETRYING and not Team.objects.filter(name="Finance").exists()

    task.retries = 0  # Huey's retry of the same job, with no retries left
    with pytest.raises(RuntimeError):
        _run(task, failing)
    claim.refresh_from_db()
    assert (claim.state, claim.attempt) == (JobState.FAILED, 2)


def test_a_job_sent_without_a_ledger_row_is_claimed_on_the_spot(db):
    # Sent from a transaction that rolled back after Huey had the message, or queued before an upgrade.
    task = make_team.s("Legacy")
    assert _run(task) == "Legacy"
    claim = JobClaim.objects.get(task_id=task.id)
    assert (claim.state, claim.attempt) == (JobState.DONE, 1)


def test_lost_messages_are_resent_and_queued_ones_left_alone(db, settings):
    settings.ECRM_JOB_ORPHAN_AFTER = 60
    old = jobs.timezone.now() - jobs.dt.timedelta(minutes=5)
    in_queue, lost = make_team.s("A"), make_team.s("B")
    for task in (in_queue, lost):
        jobs.record_enqueued(task, huey)
    JobClaim.objects.update(queued_at=old)
    huey.enqueue(in_queue)  # still waiting in the queue; the other was taken by a worker that died

    assert jobs.recover_orphaned_jobs(huey) == [lost.id]
    assert huey.pending_count() == 2
    assert jobs.recover_orphaned_jobs(huey) == []  # just re-sent: not again until it is old
    assert JobClaim.objects.get(task_id=lost.id).recoveries == 1
