-- Notifications (src/notify/notify.cpp, docs/notifications.md).

-- Test hook, superuser only: sends the event of job_id's current row as a change from old_status
-- to new_status (pg_notify + e-mail rules) and returns the JSON payload. Not part of the API.
CREATE FUNCTION privacy._notify_job_event(job_id bigint, old_status text, new_status text)
RETURNS text
AS 'MODULE_PATHNAME', 'privacy_notify_job_event' LANGUAGE C VOLATILE;
