"""The embedded Temporal runs without the background workers shipway has no use for, and with
one partition per task queue."""

from __future__ import annotations

import pytest
from temporalio.api.enums.v1 import TaskQueueType
from temporalio.api.taskqueue.v1 import TaskQueue
from temporalio.api.workflowservice.v1 import (
    DescribeTaskQueueRequest,
    ListTaskQueuePartitionsRequest,
)
from temporalio.client import Client

from tests.helpers import until
from tests.servers import Servers

pytestmark = pytest.mark.integration

SYSTEM = "temporal-system"
#: The task queues of the workers DYNAMIC_CONFIG turns off.
OFF = (
    "temporal-sys-processor-parent-close-policy",
    "temporal-sys-tq-scanner-taskqueue-0",
    "temporal-sys-history-scanner-taskqueue-0",
)
#: A worker of Temporal's own that stays: the per-namespace one, which runs schedules.
KEPT = "temporal-sys-per-ns-tq"


async def pollers(client: Client, queue: str) -> int:
    """How many workers poll QUEUE's workflow tasks in the system namespace."""
    response = await client.workflow_service.describe_task_queue(
        DescribeTaskQueueRequest(
            namespace=SYSTEM,
            task_queue=TaskQueue(name=queue),
            task_queue_type=TaskQueueType.TASK_QUEUE_TYPE_WORKFLOW,
        )
    )
    return len(response.pollers)


async def test_the_workers_shipway_has_no_use_for_do_not_poll(servers: Servers) -> None:
    client = await Client.connect(servers.temporal_address, namespace=SYSTEM)
    # Once a worker that stays polls, those turned off would have too.
    await until(lambda: pollers(client, KEPT))
    for queue in OFF:
        assert await pollers(client, queue) == 0, queue


async def test_each_task_queue_has_one_partition(servers: Servers) -> None:
    """On one server, partitions would only forward polls and tasks to each other."""
    client = await Client.connect(servers.temporal_address)
    response = await client.workflow_service.list_task_queue_partitions(
        ListTaskQueuePartitionsRequest(namespace="default", task_queue=TaskQueue(name="any"))
    )
    assert len(response.workflow_task_queue_partitions) == 1
    assert len(response.activity_task_queue_partitions) == 1
