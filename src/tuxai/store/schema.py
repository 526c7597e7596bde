"""Numbered migrations, applied in order; ``PRAGMA user_version`` says how far a file is."""

from __future__ import annotations

MIGRATIONS: tuple[str, ...] = (
    # 1: jobs, their history, and the users' decayed GPU usage (fair share).
    """
    CREATE TABLE jobs (
        id            INTEGER PRIMARY KEY AUTOINCREMENT,
        name          TEXT NOT NULL,
        user          TEXT NOT NULL,
        uid           INTEGER NOT NULL,
        gid           INTEGER NOT NULL,
        groups_json   TEXT NOT NULL DEFAULT '[]',
        spec_json     TEXT NOT NULL,
        environment_json TEXT NOT NULL DEFAULT '{}',
        state         TEXT NOT NULL,
        reason        TEXT NOT NULL DEFAULT '',
        priority      INTEGER NOT NULL DEFAULT 0,
        submitted_at  REAL NOT NULL,
        eligible_at   REAL NOT NULL DEFAULT 0,
        started_at    REAL,
        ended_at      REAL,
        exit_code     INTEGER,
        signal        INTEGER,
        attempt       INTEGER NOT NULL DEFAULT 0,
        failures      INTEGER NOT NULL DEFAULT 0,
        requeues      INTEGER NOT NULL DEFAULT 0,
        held          INTEGER NOT NULL DEFAULT 0,
        stop_request  TEXT,
        for_job       INTEGER,
        allocation_json TEXT,
        log_path      TEXT NOT NULL DEFAULT '',
        run_dir       TEXT NOT NULL DEFAULT '',
        wall_s        REAL,
        cpu_s         REAL,
        max_rss_bytes INTEGER,
        oom_killed    INTEGER NOT NULL DEFAULT 0
    );
    CREATE INDEX jobs_state ON jobs(state);
    CREATE TABLE events (
        id         INTEGER PRIMARY KEY AUTOINCREMENT,
        job_id     INTEGER NOT NULL REFERENCES jobs(id),
        at         REAL NOT NULL,
        from_state TEXT,
        to_state   TEXT NOT NULL,
        reason     TEXT NOT NULL DEFAULT ''
    );
    CREATE INDEX events_job ON events(job_id);
    CREATE TABLE usage (
        user        TEXT PRIMARY KEY,
        gpu_seconds REAL NOT NULL,
        updated_at  REAL NOT NULL
    );
    """,
    # 2: telemetry — GPU series at three resolutions, each job's energy, idle/hung flags.
    """
    CREATE TABLE gpu_series (
        resolution    INTEGER NOT NULL,
        gpu           INTEGER NOT NULL,
        at            REAL NOT NULL,
        util_pct      REAL,
        memory_used   REAL,
        power_w       REAL,
        energy_j      REAL,
        temperature_c REAL,
        PRIMARY KEY (resolution, gpu, at)
    ) WITHOUT ROWID;
    CREATE TABLE job_energy (
        job_id         INTEGER PRIMARY KEY REFERENCES jobs(id),
        gpu_j          REAL NOT NULL DEFAULT 0,
        cpu_j          REAL NOT NULL DEFAULT 0,
        gpu_s          REAL NOT NULL DEFAULT 0,
        methods_json   TEXT NOT NULL DEFAULT '{}',
        grid_g_per_kwh REAL NOT NULL,
        pue            REAL NOT NULL,
        updated_at     REAL NOT NULL
    );
    ALTER TABLE jobs ADD COLUMN flags TEXT NOT NULL DEFAULT ''
    """,
    # 3: job arrays — a task's array (its first task's id) and index (``12_3``).
    """
    ALTER TABLE jobs ADD COLUMN array_job INTEGER;
    ALTER TABLE jobs ADD COLUMN array_index INTEGER;
    CREATE INDEX jobs_array ON jobs(array_job, array_index)
    """,
    # 4: a job that ended without a run (cancelled while pending) was stored without ended_at, so its
    # "waited" kept counting: its end is its last event.
    """
    UPDATE jobs SET ended_at = (SELECT MAX(at) FROM events WHERE events.job_id = jobs.id)
    WHERE ended_at IS NULL AND state IN ('succeeded', 'failed', 'cancelled', 'timeout', 'preempted')
    """,
    # 5: the dashboard's history by user, newest first (``store.history.page``), from an index.
    "CREATE INDEX IF NOT EXISTS jobs_user ON jobs(user, id)",
    # 6: the dashboard's GPU-hours per user over time (``store.usage_history``): the jobs that ended in a range.
    "CREATE INDEX IF NOT EXISTS jobs_ended ON jobs(ended_at)",
    # 7: each job's GPU use while it ran (``store.job_gpu_use``): its GPUs' mean utilization, their peak memory.
    """
    CREATE TABLE job_gpu_use (
        job_id      INTEGER PRIMARY KEY REFERENCES jobs(id),
        util_sum    REAL NOT NULL DEFAULT 0,
        util_n      INTEGER NOT NULL DEFAULT 0,
        memory_peak REAL
    )
    """,
    # 8: a gang's ranks' ends (``rank_exits``: a JSON list of words, rank order; `tuxai show` lists them).
    "ALTER TABLE jobs ADD COLUMN rank_exits TEXT NOT NULL DEFAULT '[]'",
)
