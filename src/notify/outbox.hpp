// What both halves of notify/ share (docs/notifications.md): events.cpp queues mail in the outbox
// (privacy.notifications), mailer.cpp delivers it; each audits what became of a mail the same way.
// Internal to src/notify.
#pragma once

#include "pg/spi.hpp"

#include <optional>
#include <string>
#include <vector>

namespace privacy::notify {

// JSON text of a small object, built by PostgreSQL (json_build_object(<pairs_sql>)) so that the
// escaping and the form are PostgreSQL's. Needs SPI.
std::string json_object_sql(const std::string& pairs_sql, const std::vector<pg::SqlParam>& params);

// An audit row about a mail: `action` ('notification_sent', 'notification_failed') with its
// outcome, the job's tenant chain and job, "notification <id>" as target when the mail was queued.
void audit_mail(const std::string& action, const std::string& outcome,
                const std::optional<std::string>& tenant_id, std::optional<long long> job_id,
                std::optional<long long> notification_id, const std::string& detail_json);

}  // namespace privacy::notify
