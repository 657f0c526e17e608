"""The sweep's job queue: run the table commands as subprocesses, fold by fold, GAN before the runs that need it.

``experiments/tables.py`` builds the :class:`Job` list (which command, which log, finished or not);
this module orders and runs it (:func:`execute`), at most N at a time, and reports progress after every
job.  A job is a plain command line, so the same jobs can instead be printed for a cluster scheduler
(:func:`print_commands`).
"""
import logging
import os
import shlex
import subprocess
import time
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path

from gan_seg_aug.export.publish import adopt_quality_report
from gan_seg_aug.layout import REPO_ROOT

log = logging.getLogger(__name__)


@dataclass
class Job:
    label: str
    argv: list  # the command, with sys.executable and absolute script paths
    log: Path
    finished: bool
    gan: tuple | None = None  # (task, fold, train_cases) of the GAN this job is, or needs
    is_gan: bool = False
    fold: tuple | None = None  # (task, fold, train_cases) of the training set the run belongs to
    result: dict = field(default_factory=dict)
    # a GAN retrained while its quality report is published: adopt_quality_report's arguments; see run_job
    adopt_quality: tuple | None = None
    quality_argv: list | None = None  # the report's own command, if the published one does not fit


def shell_line(job: Job) -> str:
    """The command as a user would type it from the current directory."""
    cwd = os.getcwd()
    argv = ["python"] + [os.path.relpath(a) if os.path.isabs(a) and a.startswith(cwd + os.sep) else a
                         for a in job.argv[1:]]
    return shlex.join(argv)


def print_commands(gans, unets) -> None:
    print("# stage 1: one GAN per fold (idempotent); run these first and wait for them")
    for j in gans:
        print(shell_line(j))
    print("# stage 2: the segmentation networks (idempotent; those with generated pairs need stage 1)")
    for j in unets:
        print(shell_line(j))


def run_job(job: Job) -> Job:
    """Run one job's command, appending its output to ``job.log``; the exit code and time land in ``job.result``."""
    env = dict(os.environ)
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH")]))
    job.log.parent.mkdir(parents=True, exist_ok=True)
    log.debug(f"starting {job.label}: {shlex.join(job.argv)}")
    t0 = time.time()
    with open(job.log, "a") as out:
        out.write(f"# {time.strftime('%Y-%m-%d %H:%M:%S')} {shlex.join(job.argv)}\n")
        out.flush()
        try:
            rc = subprocess.run(job.argv, stdout=out, stderr=subprocess.STDOUT, env=env).returncode
            if rc == 0 and job.adopt_quality and not adopt_quality_report(*job.adopt_quality):
                out.write(f"# {time.strftime('%Y-%m-%d %H:%M:%S')} the published quality report is not this "
                          f"GAN's: computing its own\n# {shlex.join(job.quality_argv)}\n")
                out.flush()
                rc = subprocess.run(job.quality_argv, stdout=out, stderr=subprocess.STDOUT, env=env).returncode
        except OSError as e:
            out.write(f"could not start: {e}\n")
            rc = -1
    job.result = {"rc": rc, "seconds": time.time() - t0}
    return job


def _last_line(path: Path) -> str:
    try:
        lines = [ln for ln in path.read_text(errors="replace").splitlines() if ln.strip()]
    except OSError:
        return ""
    return lines[-1] if lines else ""


def run_order(gans: list, unets: list) -> list[Job]:
    """The unfinished jobs, one training set (fold / subset) after another: its runs without generated
    pairs (the GAN quality report's reference first among them), then its GAN, then the runs that sample
    from it.  So an interrupted sweep leaves whole folds behind it, and a GAN never waits long for the
    U-Nets that use it (its checkpoints are the one thing a fresh machine would not have)."""
    folds = list(dict.fromkeys(j.fold for j in unets + gans))
    order = []
    for key in folds:
        mine = [j for j in unets if j.fold == key and not j.finished]
        order += [j for j in mine if j.gan is None]
        order += [j for j in gans if j.fold == key and not j.finished]
        order += [j for j in mine if j.gan is not None]
    return order


def execute(gans: list, unets: list, n_jobs: int, on_finished=None) -> list[Job]:
    """Run the jobs in :func:`run_order`, at most ``n_jobs`` at once, a U-Net that needs a GAN only once
    that GAN finished; return the failed ones (and those skipped because their GAN failed).
    ``on_finished(job)`` is called after every successful run (the sweep republishes its results)."""
    for j in gans + unets:
        if j.finished:
            log.info(f"already finished: {j.label}")
    queue = run_order(gans, unets)
    gan_state = {j.gan: "pending" for j in gans if not j.finished}  # absent = finished
    total, count, failed, running = len(queue), 0, [], set()
    done_before = sum(j.finished for j in gans + unets)
    log.info(f"{total} run(s) to do ({sum(j.is_gan for j in queue)} GAN(s), {sum(not j.is_gan for j in queue)} "
             f"U-Net(s)); {done_before} already finished. Interrupted? Run the same command again: finished "
             f"runs are kept, the others resume.")
    with ThreadPoolExecutor(max_workers=n_jobs) as pool:
        while queue or running:
            i = 0
            while len(running) < n_jobs and i < len(queue):
                job = queue[i]
                state = None if job.is_gan else gan_state.get(job.gan)
                if state == "pending":
                    i += 1  # its GAN is still running: take the next one
                    continue
                queue.pop(i)
                if state == "failed":
                    count += 1
                    job.result = {"rc": None, "seconds": 0.0}
                    failed.append(job)
                    log.info(f"[{count}/{total}] SKIPPED {job.label}: its GAN failed")
                    continue
                running.add(pool.submit(run_job, job))
            if not running:
                break
            done, running = wait(running, return_when=FIRST_COMPLETED)
            for fut in done:
                job = fut.result()
                count += 1
                rc, secs = job.result["rc"], job.result["seconds"]
                if job.is_gan:
                    gan_state[job.gan] = "ok" if rc == 0 else "failed"
                if rc == 0:
                    log.info(f"[{count}/{total}] ok      {job.label} ({secs:.0f} s): {_last_line(job.log)}")
                    if on_finished is not None:
                        on_finished(job)
                else:
                    failed.append(job)
                    log.info(f"[{count}/{total}] FAILED  {job.label} (exit {rc}, {secs:.0f} s); log: {job.log}")
                left = [j.label for j in queue] + ["(running)"] * len(running)
                if left:
                    log.info(f"    {len(left)} to go; next: {', '.join(left[:3])}{' ...' if len(left) > 3 else ''}")
    return failed
