"""The reward judge under thread load: first come first served, decided-in-the-caller verdicts that never
wait for a worker, the zygote's start-up race, and LIMR's end-token rule."""

from __future__ import annotations

import socket
import threading
import time
from multiprocessing.connection import Connection

import pytest

from limr_exp.rewards import RewardSettings, judge, judge_batch, shutdown

ONE_WORKER = RewardSettings(workers=1, timeout_s=1.0)
SLOW = "$\\boxed{9^{9^{9^{9}}}}$"  # overruns any budget: holds the worker for exactly timeout_s


def boxed(x: str) -> str:
    return f"so the answer is $\\boxed{{{x}}}$."


def needs_math_verify(k: int) -> tuple[str, str]:
    """A pair no fast path decides (letters on both sides): it needs a worker."""
    return boxed(f"(x+{k})^2"), f"x^2+{2 * k}x+{k * k}"


@pytest.fixture
def fresh_pool():
    shutdown()
    judge(*needs_math_verify(1), ONE_WORKER)  # the one worker is up before timing
    yield
    shutdown()


@pytest.mark.slow
def test_calls_queued_behind_a_slow_one_finish_in_order(fresh_pool):
    """One worker, held by an overrun; eight calls that need it arrive one after another: they are
    served in the order they came, each after the slow one."""
    done: list[int] = []
    lock = threading.Lock()

    def call(k):
        assert judge(*needs_math_verify(k), ONE_WORKER).reason == "correct"
        with lock:
            done.append(k)

    slow = threading.Thread(target=judge, args=(SLOW, "3", ONE_WORKER))
    slow.start()
    time.sleep(0.2)
    threads = []
    for k in range(2, 10):
        threads.append(threading.Thread(target=call, args=(k,)))
        threads[-1].start()
        time.sleep(0.05)
    for t in threads + [slow]:
        t.join(30)
    assert done == list(range(2, 10))


@pytest.mark.slow
def test_cheap_calls_never_wait_for_a_worker(fresh_pool):
    """While the only worker is busy with an overrun, format errors and provable verdicts come back at
    once from other threads."""
    slow = threading.Thread(target=judge, args=(SLOW, "3", ONE_WORKER))
    slow.start()
    time.sleep(0.2)
    cheap = [("no box here", "4", "no_box"), ("$\\boxed{4", "4", "unterminated_box"), (boxed("4"), "4", "correct"),
             (boxed("5"), "4", "wrong"), (boxed("\\frac{1}{2}"), "0.5", "correct"), (" ".join([boxed("1")] * 6), "1", "too_many_boxes")]
    seconds, reasons = [], []

    def call(response, answer):
        t = time.monotonic()
        reasons.append(judge(response, answer, ONE_WORKER).reason)
        seconds.append(time.monotonic() - t)

    threads = [threading.Thread(target=call, args=c[:2]) for c in cheap]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert slow.is_alive()  # the worker was busy the whole time
    slow.join(10)
    assert sorted(reasons) == sorted(c[2] for c in cheap) and max(seconds) < 0.5


@pytest.mark.slow
def test_no_call_waits_longer_than_the_calls_ahead_of_it(fresh_pool):
    """4 threads on 1 worker, overruns among them: each call is back within (calls ahead) x budget + slack."""
    calls = [(SLOW, "3") if k % 4 == 0 else needs_math_verify(k) for k in range(12)]
    seconds = []

    def call(pair):
        t = time.monotonic()
        judge(*pair, ONE_WORKER)
        seconds.append(time.monotonic() - t)

    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(4) as ex:
        list(ex.map(call, calls))
    # at most 3 calls are ahead of any call (4 threads), at most all of them overruns
    assert max(seconds) < 4 * ONE_WORKER.timeout_s + 2.0


def test_a_worker_connect_before_the_zygote_listens_is_retried(tmp_path):
    """The socket file can exist before anyone listens on it (a zygote between bind and listen, or one
    restarting): the connection is retried within the start-up window instead of failing the call."""
    from limr_exp.rewards.pool import _Zygote

    path = str(tmp_path / "z.sock")
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(path)  # bound, not yet listening: a connect now is refused

    def listen_later():
        time.sleep(0.4)
        server.listen(1)
        client, _ = server.accept()
        conn = Connection(client.detach())
        assert conn.recv() == 2048  # the memory limit, as the real zygote reads it
        conn.send(12345)  # the forked worker's pid
        conn.close()

    thread = threading.Thread(target=listen_later)
    thread.start()
    zygote = object.__new__(_Zygote)
    zygote.path = path
    zygote.proc = type("Running", (), {"poll": staticmethod(lambda: None)})()
    worker = zygote.fork_worker(2048)
    thread.join(5)
    server.close()
    assert worker.pid == 12345


@pytest.mark.slow
def test_the_real_zygote_accepts_the_moment_its_socket_appears():
    from limr_exp.rewards import pool

    shutdown()
    z = pool.zygote()  # returns as soon as the socket file exists
    worker = z.fork_worker(2048)
    worker.kill()
    shutdown()


# -- LIMR's end-token rule (serve_rm.py: -1 without <|im_end|>/<|endoftext|>, judged up to the first) --

LIMR = RewardSettings(require_end_token=True)


@pytest.mark.parametrize("response,reward,reason", [
    ("so \\boxed{4}.<|im_end|>", 1.0, "correct"),
    ("so \\boxed{4}.<|endoftext|>", 1.0, "correct"),
    ("so \\boxed{4}.", -1.0, "no_end_token"),  # cut at the token limit
    ("so \\boxed{4}.<|im_end|>\n<|im_start|>user\nagain \\boxed{5}\\boxed{5}\\boxed{5}\\boxed{5}\\boxed{5}", 1.0, "correct"),
    ("so \\boxed{5}.<|im_end|> no, \\boxed{4}", -0.5, "wrong"),  # what follows the end is never the answer
    ("no box<|im_end|>", -1.0, "no_box"),
])
def test_end_tokens_as_limrs_rm_server_reads_them(response, reward, reason):
    j = judge(response, "4", LIMR)
    assert (j.reward, j.reason) == (reward, reason)


def test_without_the_rule_only_the_cut_applies():
    assert judge("so \\boxed{4}.", "4").reward == 1.0  # the toy default: no end token needed
    assert judge("so \\boxed{5}.<|im_end|> no, \\boxed{4}", "4").reward == -0.5


def test_a_generators_own_word_on_truncation_counts():
    """The local trainer decodes without special tokens and says which responses stopped at EOS."""
    responses = [boxed("4"), boxed("4"), boxed("5")]
    js = judge_batch(responses, ["4"] * 3, LIMR, ended=[True, False, True])
    assert [j.reason for j in js] == ["correct", "no_end_token", "wrong"]
    with pytest.raises(ValueError, match="ended flags"):
        judge_batch(responses, ["4"] * 3, LIMR, ended=[True])
