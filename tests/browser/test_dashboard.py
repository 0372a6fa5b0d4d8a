"""The dashboard in a real browser against a real server process and Redis: offline, live over
SSE, reconnecting without loss, the operator actions and the token prompt."""

from __future__ import annotations

import os
import shutil
import struct
from pathlib import Path
from typing import Any

import grpc
import pytest

from claudebench.v1 import system_pb2, system_pb2_grpc, tasks_pb2, tasks_pb2_grpc
from tests.browser.conftest import Served

DOCS = Path(__file__).parents[2] / "docs"
# Generous for a busy 2-core CI machine: a wait, not a latency assertion.
LIVE_MS = 10_000
ADMIN = (("authorization", "Bearer admintok"),)


def expect(locator: Any) -> Any:
    from playwright.async_api import expect as playwright_expect

    return playwright_expect(locator)


async def create(channel: grpc.aio.Channel, text: str, metadata: Any = None) -> tasks_pb2.Task:
    stub = tasks_pb2_grpc.TaskServiceStub(channel)
    reply: tasks_pb2.CreateTaskResponse = await stub.CreateTask(
        tasks_pb2.CreateTaskRequest(text=text), metadata=metadata
    )
    return reply.task


async def test_the_overview_loads_offline_without_console_errors_and_is_keyboard_reachable(
    served: Served, open_page: Any
) -> None:
    async with served.channel() as channel:
        await create(channel, "a task")
    view = await open_page(served.base)
    page = view.page
    await page.goto(served.base)
    # No worker yet: DEGRADED, with the server's reason; one registers: HEALTHY (the page polls).
    await expect(page.locator("#health .badge")).to_have_text("degraded", timeout=LIVE_MS)
    await expect(page.locator("#health .reason")).not_to_be_empty()
    async with served.channel() as channel:
        system = system_pb2_grpc.SystemServiceStub(channel)
        await system.Register(system_pb2.RegisterRequest(instance_id="w-1"))
    await expect(page.locator("#health .badge")).to_have_text("healthy", timeout=LIVE_MS)
    await expect(page.locator("#instances tbody th")).to_have_text("w-1 leader")
    await expect(page.locator("#connection")).to_have_text("live", timeout=LIVE_MS)
    await expect(page.locator("#counts [data-count=pending]")).to_have_text("1")
    await expect(page.locator("#chart canvas")).to_have_count(1)  # the vendored uPlot drew
    # Keyboard: the first Tab reaches the skip link, the next ones the navigation.
    await page.keyboard.press("Tab")
    assert await page.evaluate("document.activeElement.textContent") == "Skip to content"
    for _ in range(20):
        await page.keyboard.press("Tab")
        if await page.evaluate("document.activeElement.textContent") == "Tasks":
            break
    await page.keyboard.press("Enter")
    await expect(page.locator("#view-tasks")).to_be_visible()
    await expect(page.locator("#tasks-table tbody tr")).to_have_count(1)
    # Every visible control has an accessible name.
    unnamed = await page.evaluate(
        """[...document.querySelectorAll('button, input, select, a[href]')]
             .filter(e => e.offsetParent !== null)
             .filter(e => !(e.labels && e.labels.length) && !e.getAttribute('aria-label')
                          && !e.textContent.trim())
             .map(e => e.outerHTML)"""
    )
    assert unnamed == []
    assert view.external == []
    assert view.errors == []


@pytest.mark.parametrize("width", [1280, 390])
async def test_the_page_fits_the_screen_width(served: Served, open_page: Any, width: int) -> None:
    async with served.channel() as channel:
        task = await create(channel, "a task with a long text " * 20)
    view = await open_page(served.base, width=width, height=800)
    page = view.page
    for route in ("#/", "#/tasks", "#/feed", f"#/task/{task.id}"):
        await page.goto(served.base + route)
        await expect(page.locator("#connection")).to_have_text("live", timeout=LIVE_MS)
        await page.wait_for_timeout(300)
        assert await page.evaluate("document.documentElement.scrollWidth") <= width, route
    assert view.errors == []


async def test_a_task_shows_up_live_and_changes_status_without_reload(served: Served, open_page: Any) -> None:
    view = await open_page(served.base)
    page = view.page
    ended: list[str] = []  # streams the page closed (a fetch it aborts fails with ERR_ABORTED)
    page.on("requestfailed", lambda request: ended.append(request.url))
    await page.goto(served.base + "#/feed")
    await expect(page.locator("#connection")).to_have_text("live", timeout=LIVE_MS)
    async with served.channel() as channel:
        task = await create(channel, "watch me")
        created = page.locator(f'#feed tr[data-type="TASK_EVENT_TYPE_CREATED"] >> text={task.id}')
        await expect(created).to_be_visible(timeout=LIVE_MS)
        await page.click("nav >> text=Overview")
        await expect(page.locator("#counts [data-count=pending]")).to_have_text("1", timeout=LIVE_MS)
        await page.click("nav >> text=Tasks")
        await page.click(f"#tasks-table >> text={task.id}")
        await expect(page.locator('[data-field="Status"]')).to_have_text("pending", timeout=LIVE_MS)
        # A Python worker claims and completes it: the page follows without a reload.
        system = system_pb2_grpc.SystemServiceStub(channel)
        tasks = tasks_pb2_grpc.TaskServiceStub(channel)
        await system.Register(system_pb2.RegisterRequest(instance_id="w-1", max_tasks=1))
        claimed = (await tasks.ClaimTask(tasks_pb2.ClaimTaskRequest(worker_id="w-1", max_tasks=1))).tasks
        assert [t.id for t in claimed] == [task.id]
        await expect(page.locator('[data-field="Status"]')).to_have_text("in progress", timeout=LIVE_MS)
        await expect(page.locator('[data-field="Holder"]')).to_have_text("w-1")
        request = tasks_pb2.CompleteTaskRequest(task_id=task.id, worker_id="w-1")
        request.result.string_value = "all done"
        await tasks.CompleteTask(request)
    await expect(page.locator('[data-field="Status"]')).to_have_text("completed", timeout=LIVE_MS)
    await expect(page.locator('[data-block="Result"]')).to_have_text('"all done"')
    timeline = page.locator("#timeline li")
    await expect(timeline).to_have_count(3, timeout=LIVE_MS)
    assert [await timeline.nth(i).get_attribute("data-type") for i in range(3)] == [
        "TASK_EVENT_TYPE_CREATED",
        "TASK_EVENT_TYPE_CLAIMED",
        "TASK_EVENT_TYPE_COMPLETED",
    ]
    assert await page.evaluate("performance.getEntriesByType('navigation').length") == 1  # no reload
    # The task's own stream served its history only: the page's live stream carries the rest.
    assert [url for url in ended if "taskId=" in url] == [f"{served.base}api/v1/events?taskId={task.id}"]
    assert view.external == []
    assert view.errors == []


async def test_the_tasks_table_filters_pages_and_searches(served: Served, open_page: Any) -> None:
    async with served.channel() as channel:
        tasks = tasks_pb2_grpc.TaskServiceStub(channel)
        texts = [f"job {i}" for i in range(29)] + ["the needle"]
        await tasks.CreateTasks(
            tasks_pb2.CreateTasksRequest(tasks=[tasks_pb2.CreateTaskRequest(text=t) for t in texts])
        )
        system = system_pb2_grpc.SystemServiceStub(channel)
        await system.Register(system_pb2.RegisterRequest(instance_id="w-7", max_tasks=2))
        await tasks.ClaimTask(tasks_pb2.ClaimTaskRequest(worker_id="w-7", max_tasks=2))
    view = await open_page(served.base)
    page = view.page
    await page.goto(served.base + "#/tasks")
    rows = page.locator("#tasks-table tbody tr[data-task]")
    await page.select_option('#task-filters select[name="pageSize"]', "25")
    await page.click("#task-filters button[type=submit]")
    await expect(rows).to_have_count(25, timeout=LIVE_MS)
    await expect(page.locator("#tasks-summary")).to_contain_text("of 30")
    await page.click("#tasks-next")
    await expect(rows).to_have_count(5)
    await page.click("#tasks-prev")
    await expect(rows).to_have_count(25)
    await page.select_option('#task-filters select[name="status"]', "TASK_STATUS_IN_PROGRESS")
    await page.click("#task-filters button[type=submit]")
    await expect(rows).to_have_count(2)
    await page.select_option('#task-filters select[name="status"]', "")
    await page.fill('#task-filters input[name="assignedTo"]', "w-7")
    await page.click("#task-filters button[type=submit]")
    await expect(rows).to_have_count(2)
    await expect(page.locator("#tasks-table tbody td:nth-child(6)")).to_have_text(["w-7", "w-7"])
    await page.fill('#task-filters input[name="assignedTo"]', "")
    await page.select_option('#task-filters select[name="pageSize"]', "50")
    await page.click("#task-filters button[type=submit]")
    await expect(rows).to_have_count(30)
    await page.fill("#task-search", "NEEDLE")
    await expect(rows).to_have_count(1)
    await expect(rows.locator("td.text")).to_have_text("the needle")
    assert view.errors == []


async def test_the_feed_pauses_and_filters_by_type(served: Served, open_page: Any) -> None:
    view = await open_page(served.base)
    page = view.page
    await page.goto(served.base + "#/feed")
    await expect(page.locator("#connection")).to_have_text("live", timeout=LIVE_MS)
    await page.click("#feed-pause")
    await expect(page.locator("#feed-pause")).to_have_attribute("aria-pressed", "true")
    async with served.channel() as channel:
        first = await create(channel, "held while paused")
        await expect(page.locator("#feed-held")).to_contain_text("1 new event(s) held", timeout=LIVE_MS)
        assert await page.locator(f"#feed >> text={first.id}").count() == 0
        await page.click("#feed-pause")
        await expect(page.locator(f"#feed >> text={first.id}")).to_be_visible()
        stub = tasks_pb2_grpc.TaskServiceStub(channel)
        await stub.DeleteTask(tasks_pb2.DeleteTaskRequest(task_id=first.id))
    deleted = page.locator('#feed tr[data-type="TASK_EVENT_TYPE_DELETED"]')
    await expect(deleted).to_have_count(1, timeout=LIVE_MS)
    await page.select_option("#feed-type", "TASK_EVENT_TYPE_DELETED")
    await expect(page.locator("#feed tbody tr")).to_have_count(1)
    await expect(page.locator("#feed tbody tr")).to_have_attribute("data-type", "TASK_EVENT_TYPE_DELETED")
    assert view.errors == []


async def test_a_restarted_server_is_reconnected_to_and_no_event_is_missed(
    served: Served, open_page: Any
) -> None:
    """The page's server goes away; events happen meanwhile (through a second server on the same
    Redis); the page reconnects with Last-Event-ID and shows exactly the stream's events."""
    view = await open_page(served.base)
    page = view.page
    await page.goto(served.base + "#/feed")
    await expect(page.locator("#connection")).to_have_text("live", timeout=LIVE_MS)
    other = Served(served.redis_url, served.log_dir, namespace=served.namespace)
    other.start()
    try:
        async with other.channel() as channel:
            before = await create(channel, "before")
            await expect(page.locator(f"#feed >> text={before.id}")).to_be_visible(timeout=LIVE_MS)
            served.stop()
            await expect(page.locator("#connection")).to_have_text("reconnecting…", timeout=LIVE_MS)
            missed = [(await create(channel, f"while away {i}")).id for i in range(5)]
            served.start()
            await expect(page.locator("#connection")).to_have_text("live", timeout=LIVE_MS)
            for task_id in missed:
                await expect(page.locator(f"#feed >> text={task_id}")).to_be_visible(timeout=LIVE_MS)
            stub = tasks_pb2_grpc.TaskServiceStub(channel)
            expected = []
            async for reply in stub.WatchTasks(tasks_pb2.WatchTasksRequest(after_event_id="0")):
                expected.append(reply.event.event_id)
                if reply.event.task_id == missed[-1]:
                    break
    finally:
        other.stop()
    shown = await page.eval_on_selector_all(
        "#feed tbody tr", "rows => rows.map(r => r.dataset.event).reverse()"
    )
    assert shown == expected  # every event once, in stream order
    assert view.external == []


async def test_a_page_whose_place_in_the_stream_was_trimmed_is_told_and_goes_on_live(
    redis_server_url: str, tmp_path: Path, open_page: Any
) -> None:
    """OUT_OF_RANGE over SSE: the page's last event left retention while it was away; on
    reconnecting it is told (event: reload), says so, re-reads, and follows live again."""
    retention = {"CLAUDEBENCH_EVENT_RETENTION": "10"}
    served = Served(redis_server_url, tmp_path, env=retention)
    served.start()
    other = Served(redis_server_url, tmp_path, env=retention, namespace=served.namespace)
    other.start()
    try:
        view = await open_page(served.base)
        page = view.page
        await page.goto(served.base + "#/feed")
        await expect(page.locator("#connection")).to_have_text("live", timeout=LIVE_MS)
        async with other.channel() as channel:
            first = await create(channel, "first")
            await expect(page.locator(f"#feed >> text={first.id}")).to_be_visible(timeout=LIVE_MS)
            served.stop()
            stub = tasks_pb2_grpc.TaskServiceStub(channel)
            for batch in range(5):  # far past the retention: the page's cursor is trimmed away
                more = [tasks_pb2.CreateTaskRequest(text=f"flood {batch}.{i}") for i in range(100)]
                await stub.CreateTasks(tasks_pb2.CreateTasksRequest(tasks=more))
            served.start()
            message = page.locator("#status-message")
            await expect(message).to_contain_text("no longer holds", timeout=LIVE_MS)
            await expect(page.locator("#connection")).to_have_text("live", timeout=LIVE_MS)
            after = await create(channel, "after")
            await expect(page.locator(f"#feed >> text={after.id}")).to_be_visible(timeout=LIVE_MS)
    finally:
        served.stop()
        other.stop()


async def test_an_admin_signs_in_and_acts_and_each_action_is_logged(
    served_with_tokens: Served, open_page: Any
) -> None:
    served = served_with_tokens
    view = await open_page(served.base)
    page = view.page
    await page.goto(served.base)
    # No token: the page asks for one, and a wrong one is refused.
    await expect(page.locator("#view-login")).to_be_visible(timeout=LIVE_MS)
    await expect(page.locator("#connection")).to_have_text("signed out")
    await expect(page.locator("#token-input")).to_be_focused()
    await page.fill("#token-input", "not-a-token")
    await page.press("#token-input", "Enter")
    await expect(page.locator("#login-error")).to_have_text("The server refused this token.")
    await page.fill("#token-input", "admintok")
    await page.click("#login-form button")
    await expect(page.locator("#who")).to_have_text("role: admin", timeout=LIVE_MS)
    assert await page.evaluate("document.cookie") == ""
    caps = await page.evaluate(
        "fetch('/api/v1/capabilities', {headers: {Authorization: 'Bearer admintok'}}).then(r => r.json())"
    )
    async with served.channel() as channel:
        stub = tasks_pb2_grpc.TaskServiceStub(channel)
        task = await create(channel, "to act on", metadata=ADMIN)

        async def status() -> int:
            reply = await stub.GetTask(tasks_pb2.GetTaskRequest(task_id=task.id), metadata=ADMIN)
            return int(reply.task.status)

        await page.goto(served.base + f"#/task/{task.id}")
        await expect(page.locator('[data-field="Status"]')).to_have_text("pending", timeout=LIVE_MS)
        if "CancelTask" in caps["rpcs"]:
            await page.click("#action-cancel")
            await expect(page.locator('[data-field="Status"]')).to_have_text("cancelled", timeout=LIVE_MS)
            assert await status() == tasks_pb2.TASK_STATUS_CANCELLED
        else:
            await expect(page.locator("#action-cancel")).to_have_count(0)  # not built: not offered
        if "RetryTask" in caps["rpcs"] and "CancelTask" in caps["rpcs"]:
            await page.click("#action-retry")
            await expect(page.locator('[data-field="Status"]')).to_have_text("pending", timeout=LIVE_MS)
            assert await status() == tasks_pb2.TASK_STATUS_PENDING
        else:
            await expect(page.locator("#action-retry")).to_have_count(0)
        await page.click("#action-delete")
        await page.click("#action-delete-confirm")
        message = page.locator("#status-message")
        await expect(message).to_have_text(f"Delete task {task.id}: done", timeout=LIVE_MS)
        with pytest.raises(grpc.aio.AioRpcError) as info:
            await status()
        assert info.value.code() == grpc.StatusCode.NOT_FOUND
    log = served.log.read_text()
    assert f"action DeleteTask {{'task_id': '{task.id}'}} by admin token sha256:" in log
    assert "admintok" not in log
    # The one console error: the browser's own line for the refused token's 401.
    assert all("401" in error for error in view.errors), view.errors


async def test_a_reader_sees_no_controls_and_the_server_refuses_its_actions(
    served_with_tokens: Served, open_page: Any
) -> None:
    served = served_with_tokens
    async with served.channel() as channel:
        task = await create(channel, "not yours to delete", metadata=ADMIN)
    view = await open_page(served.base)
    page = view.page
    await page.goto(served.base + f"#/task/{task.id}")
    await page.fill("#token-input", "readtok")
    await page.press("#token-input", "Enter")
    await expect(page.locator("#who")).to_have_text("role: reader", timeout=LIVE_MS)
    await expect(page.locator('[data-field="Status"]')).to_have_text("pending", timeout=LIVE_MS)
    await expect(page.locator("#task-actions button")).to_have_count(0)
    # Signing in anew (Change token) starts the stream again: the feed still shows each event once.
    await page.click("#change-token")
    await expect(page.locator("#view-login")).to_be_visible()
    await page.fill("#token-input", "readtok")
    await page.press("#token-input", "Enter")
    await expect(page.locator("#who")).to_have_text("role: reader", timeout=LIVE_MS)
    await page.click('nav a[data-view="feed"]')
    await expect(page.locator(f"#feed >> text={task.id}")).to_have_count(1, timeout=LIVE_MS)

    # A page that believes otherwise (say the token's role changed while it was open) still cannot
    # act: the server refuses, the page shows the 403, nothing changes.
    async def everything_allowed(route: Any) -> None:
        response = await route.fetch()
        caps = await response.json()
        caps["allowed"] = caps["rpcs"]
        await route.fulfill(response=response, json=caps)

    await page.route("**/api/v1/capabilities", everything_allowed)
    await page.goto(served.base + f"#/task/{task.id}")
    await page.reload()
    await expect(page.locator("#action-delete")).to_be_visible(timeout=LIVE_MS)
    await page.click("#action-delete")
    await page.click("#action-delete-confirm")
    message = page.locator("#status-message")
    await expect(message).to_contain_text("403 PERMISSION_DENIED", timeout=LIVE_MS)
    async with served.channel() as channel:
        stub = tasks_pb2_grpc.TaskServiceStub(channel)
        reply = await stub.GetTask(tasks_pb2.GetTaskRequest(task_id=task.id), metadata=ADMIN)
        assert reply.task.text == task.text
    assert f"refused /api/v1/tasks/{task.id}: reader token" in served.log.read_text()


def _png_size(path: Path) -> tuple[int, int]:
    header = path.read_bytes()[:24]
    assert header[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", header[16:24])
    return width, height


async def test_the_overview_screenshot_in_docs(served: Served, open_page: Any, tmp_path: Path) -> None:
    """Takes the overview's screenshot with a little fleet at work; CLAUDEBENCH_UPDATE_SCREENSHOT=1
    writes it to docs/dashboard.png (committed, shown in the README)."""
    view = await open_page(served.base, width=1280, height=900)
    page = view.page
    await page.goto(served.base)
    await expect(page.locator("#connection")).to_have_text("live", timeout=LIVE_MS)
    async with served.channel() as channel:
        system = system_pb2_grpc.SystemServiceStub(channel)
        tasks = tasks_pb2_grpc.TaskServiceStub(channel)
        for name in ("worker-a", "worker-b"):
            await system.Register(
                system_pb2.RegisterRequest(
                    instance_id=name, max_tasks=4, roles=["worker"], queues=["default", "gpu"]
                )
            )
        for round_ in range(10):
            batch = [
                tasks_pb2.CreateTaskRequest(
                    text=f"job {round_}.{i}", queue="gpu" if i % 3 == 0 else "default"
                )
                for i in range(8)
            ]
            await tasks.CreateTasks(tasks_pb2.CreateTasksRequest(tasks=batch))
            for worker in ("worker-a", "worker-b"):
                claim = tasks_pb2.ClaimTaskRequest(worker_id=worker, max_tasks=3)
                claimed = (await tasks.ClaimTask(claim)).tasks
                for n, task in enumerate(claimed[: 2 if round_ < 9 else 0]):
                    done = tasks_pb2.CompleteTaskRequest(task_id=task.id, worker_id=worker)
                    if n == 1 and round_ % 2:
                        done.error = "the tool timed out"
                    else:
                        done.result.string_value = "ok"
                    await tasks.CompleteTask(done)
            await page.wait_for_timeout(600)
    await expect(page.locator("#instances tbody tr")).to_have_count(2, timeout=LIVE_MS)
    await page.wait_for_timeout(1500)
    shot = tmp_path / "dashboard.png"
    await page.screenshot(path=str(shot))
    assert _png_size(shot) == (1280, 900)
    if os.environ.get("CLAUDEBENCH_UPDATE_SCREENSHOT") == "1":
        shutil.copy(shot, DOCS / "dashboard.png")
    assert _png_size(DOCS / "dashboard.png") == (1280, 900)
    assert view.errors == []


async def capabilities(page: Any, token: str | None = None) -> dict[str, Any]:
    headers = f"{{Authorization: 'Bearer {token}'}}" if token else "{}"
    caps: dict[str, Any] = await page.evaluate(
        f"fetch('/api/v1/capabilities', {{headers: {headers}}}).then(r => r.json())"
    )
    return caps


async def test_a_queue_paused_from_the_page_hands_out_nothing(served: Served, open_page: Any) -> None:
    view = await open_page(served.base)
    page = view.page
    await page.goto(served.base)
    await expect(page.locator("#connection")).to_have_text("live", timeout=LIVE_MS)
    if "PauseQueue" not in (await capabilities(page))["rpcs"]:
        # QueueService not built on this server: no Queues page is offered.
        await expect(page.locator('nav a[data-view="queues"]')).to_be_hidden()
        return
    async with served.channel() as channel:
        tasks = tasks_pb2_grpc.TaskServiceStub(channel)
        system = system_pb2_grpc.SystemServiceStub(channel)
        await system.Register(system_pb2.RegisterRequest(instance_id="w-q", queues=["mail"]))
        task = (await tasks.CreateTask(tasks_pb2.CreateTaskRequest(text="send it", queue="mail"))).task
        await page.click('nav a[data-view="queues"]')
        row = page.locator('#queues tr[data-queue="mail"]')
        await expect(row.locator("[data-state]")).to_have_text("running", timeout=LIVE_MS)
        await row.locator('button[data-action="pause"]').click()
        await expect(row.locator("[data-state]")).to_have_text("paused", timeout=LIVE_MS)
        claim = tasks_pb2.ClaimTaskRequest(worker_id="w-q", queues=["mail"])
        assert list((await tasks.ClaimTask(claim)).tasks) == []
        await row.locator('button[data-action="resume"]').click()
        await expect(row.locator("[data-state]")).to_have_text("running", timeout=LIVE_MS)
        assert [t.id for t in (await tasks.ClaimTask(claim)).tasks] == [task.id]
    assert "action PauseQueue {'queue': 'mail'} by anonymous" in served.log.read_text()
    assert view.errors == []


async def test_a_schedule_paused_and_resumed_from_the_page(served: Served, open_page: Any) -> None:
    view = await open_page(served.base)
    page = view.page
    await page.goto(served.base)
    await expect(page.locator("#connection")).to_have_text("live", timeout=LIVE_MS)
    if "PauseSchedule" not in (await capabilities(page))["rpcs"]:
        await expect(page.locator('nav a[data-view="schedules"]')).to_be_hidden()
        return
    async with served.channel() as channel:
        tasks = tasks_pb2_grpc.TaskServiceStub(channel)
        create_schedule = tasks_pb2.CreateScheduleRequest(
            schedule_id="hourly", template=tasks_pb2.CreateTaskRequest(text="tick")
        )
        create_schedule.interval.seconds = 3600
        await tasks.CreateSchedule(create_schedule)
        await page.click('nav a[data-view="schedules"]')
        row = page.locator('#schedules tr[data-schedule="hourly"]')
        await expect(row.locator("[data-state]")).to_have_text("running", timeout=LIVE_MS)
        await row.locator('button[data-action="pause"]').click()
        await expect(row.locator("[data-state]")).to_have_text("paused", timeout=LIVE_MS)
        got = await tasks.GetSchedule(tasks_pb2.GetScheduleRequest(schedule_id="hourly"))
        assert got.schedule.paused
        await row.locator('button[data-action="resume"]').click()
        await expect(row.locator("[data-state]")).to_have_text("running", timeout=LIVE_MS)
        got = await tasks.GetSchedule(tasks_pb2.GetScheduleRequest(schedule_id="hourly"))
        assert not got.schedule.paused
    assert view.errors == []
