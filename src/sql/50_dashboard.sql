-- psql is the dashboard (DESIGN section 4): the stat cards.
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
                          AND due_at < now())                               AS overdue
FROM privacy.jobs;
