-- Notifications (src/notify.cpp, docs/notifications.md).

