-- Notifications (src/notify/events.cpp and mailer.cpp, docs/notifications.md).

