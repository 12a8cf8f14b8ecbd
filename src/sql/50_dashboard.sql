-- psql is the dashboard (docs/jobs.md, "Watching from psql"): the stat cards. with_open_items
-- counts the jobs with flagged items nobody has resolved or retried yet (privacy.job_errors).
CREATE VIEW privacy.dashboard AS
SELECT count(*) FILTER (WHERE status = 'pending')                           AS pending,
       count(*) FILTER (WHERE status = 'approved')                          AS approved,
       count(*) FILTER (WHERE status = 'processing')                        AS processing,
       count(*) FILTER (WHERE status = 'completed')                         AS completed,
       count(*) FILTER (WHERE status = 'failed')                            AS failed,
       count(*) FILTER (WHERE status = 'rejected')                          AS rejected,
       count(*) FILTER (WHERE status = 'cancelled')                         AS cancelled,
       count(*)                                                             AS total,
       count(*) FILTER (WHERE status IN ('pending', 'approved', 'processing', 'failed')
                          AND due_at < now())                               AS overdue,
       count(*) FILTER (WHERE finalization = 'awaiting_window')             AS awaiting_window,
       count(*) FILTER (WHERE finalization = 'finalizing')                  AS finalizing,
       count(*) FILTER (WHERE finalization = 'held')                        AS finalization_held,
       count(*) FILTER (WHERE EXISTS (SELECT FROM privacy.job_errors e
                                       WHERE e.job_id = jobs.id AND e.resolution IS NULL))
                                                                            AS with_open_items
FROM privacy.jobs;
