"""arq's processing rate on the benchmark's Redis: enqueue JOBS no-op jobs, then time a burst worker
(max_jobs 50) draining them. Runs in its own virtualenv (arq pins redis<6; python -m bench makes it).

Usage: python arq_peer.py REDIS_PORT JOBS  -> prints {"jobs": N, "seconds": S, "jobs_per_s": R}
"""

import asyncio
import json
import sys
import time

from arq import create_pool
from arq.connections import RedisSettings
from arq.worker import Worker


async def noop(ctx: dict[str, object], i: int) -> int:
    return i


async def main(port: int, jobs: int) -> None:
    settings = RedisSettings(host="127.0.0.1", port=port)
    pool = await create_pool(settings)
    await pool.flushdb()
    for start in range(0, jobs, 500):
        await asyncio.gather(*(pool.enqueue_job("noop", i) for i in range(start, min(jobs, start + 500))))
    worker = Worker(
        functions=[noop],
        redis_settings=settings,
        burst=True,
        max_jobs=50,
        poll_delay=0.05,
        handle_signals=False,
    )
    started = time.perf_counter()
    await worker.async_run()
    seconds = time.perf_counter() - started
    await worker.close()
    assert worker.jobs_complete == jobs, (worker.jobs_complete, jobs)
    print(json.dumps({"jobs": jobs, "seconds": round(seconds, 3), "jobs_per_s": round(jobs / seconds, 1)}))
    await pool.aclose()


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]), int(sys.argv[2])))
