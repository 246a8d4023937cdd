"""Python-side behaviour: the GIL is released while the engine runs, and Ctrl-C stops a long
generation within a second (the request is cancelled on the engine)."""

from __future__ import annotations

import _thread
import threading
import time

import pytest

from ondo import LLM, SamplingParams

LONG = SamplingParams(temperature=0, max_tokens=4000, ignore_eos=True)


def _interrupt_once_generating(llm: LLM, sent: list[float], baseline: int) -> None:
    # This loop runs Python while the main thread is inside generate(): only possible because
    # the GIL is released there. It waits until tokens are being generated, then sends SIGINT.
    while llm.engine_stats["generation_tokens"] < baseline + 20:
        time.sleep(0.005)
    sent.append(time.monotonic())
    _thread.interrupt_main()


@pytest.mark.parametrize("how", ["generate", "stream"])
def test_keyboard_interrupt_stops_a_long_generation_within_a_second(llm: LLM, how: str):
    sent: list[float] = []
    baseline = llm.engine_stats["generation_tokens"]
    aborted = llm.engine_stats["requests_aborted"]
    watcher = threading.Thread(target=_interrupt_once_generating, args=(llm, sent, baseline), daemon=True)
    watcher.start()
    with pytest.raises(KeyboardInterrupt):
        if how == "generate":
            llm.generate(["Tell me a very long story about the sea."], LONG)
        else:
            for _ in llm.stream("Tell me a very long story about the sea.", LONG):
                pass
    caught = time.monotonic()
    watcher.join()
    assert sent, "the watcher never saw tokens being generated"
    assert caught - sent[0] < 1.0
    # The request was cancelled on the engine, not left running: it counts as aborted once the
    # engine's next step sees it (bounded wait).
    deadline = time.monotonic() + 5
    while llm.engine_stats["requests_aborted"] == aborted and time.monotonic() < deadline:
        time.sleep(0.01)
    assert llm.engine_stats["requests_aborted"] == aborted + 1
    assert llm.engine_stats["generation_tokens"] - baseline < 4000


def test_other_threads_run_while_generating(llm: LLM):
    ticks = 0
    stop = threading.Event()

    def count() -> None:
        nonlocal ticks
        while not stop.is_set():
            ticks += 1
            time.sleep(0.001)

    t = threading.Thread(target=count)
    t.start()
    try:
        before = ticks
        llm.generate(["Count to twenty:"], SamplingParams(temperature=0, max_tokens=64, ignore_eos=True))
        during = ticks - before
    finally:
        stop.set()
        t.join()
    assert during > 10
