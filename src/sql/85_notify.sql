-- Notifications (src/notify/notify.cpp, docs/notifications.md).

