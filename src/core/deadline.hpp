// When a data-subject request is due, and how far its deadline may be extended
// (docs/compliance.md, "Deadlines").
//
//   GDPR   Art. 12(3): one month from receipt; extendable by up to two further months, provided
//          the data subject is told within the first month (any number of extensions, together
//          at most until three months after receipt).
//   CCPA   Cal. Civ. Code 1798.130(a)(2): 45 days from receipt; extendable once by up to 45 more
//          days, provided the consumer is told within the first 45 days.
//   other  the tenant's `deadline` setting; extendable by any positive interval at any time.
//
// Months are calendar months counted as EU Regulation 1182/71 Art. 3(2)(c) counts them: the
// period ends on the same day of the month it started on, or on the last day of the month when
// that month is shorter (received 31 January -> due 28 or 29 February; received 29 February ->
// due 29 March). The time of day is kept, so a due date is never later than the end of the day
// the law names. Public holidays and weekends, which can move a legal deadline to the next
// working day, are ignored: the due date shown is never later than the legal one.
//
// Everything here works on wall-clock times of the tenant's time zone (CivilTime, PostgreSQL's
// `timestamp without time zone`); the SQL side converts from and to timestamptz in that zone, so
// a month ends where the tenant's calendar ends it. Pure C++: test/unit/deadline_test.cpp.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace privacy::core {

// The SQL enum privacy.regulation.
enum class Regulation { Gdpr, Ccpa, Other };

std::string_view to_string(Regulation regulation);  // "gdpr", "ccpa", "other"
std::optional<Regulation> parse_regulation(std::string_view text);

// A date and time of day without a time zone, to the microsecond.
struct CivilTime {
  int year = 1970;
  int month = 1;  // 1..12
  int day = 1;    // 1..31
  int hour = 0;
  int minute = 0;
  int second = 0;
  int microsecond = 0;
};

bool operator==(const CivilTime& a, const CivilTime& b);
bool operator<(const CivilTime& a, const CivilTime& b);
inline bool operator<=(const CivilTime& a, const CivilTime& b) { return !(b < a); }

// PostgreSQL's ISO output of a timestamp: "2024-01-31 10:00:00" or "2024-01-31 10:00:00.25".
// Throws Error(22023) for anything else (or an impossible date such as 2023-02-29).
CivilTime parse_civil_time(std::string_view text);

// "2024-01-31 10:00:00.000000", which PostgreSQL reads back as a timestamp.
std::string to_string(const CivilTime& time);

// An interval as PostgreSQL keeps it: months, days and microseconds, added in that order (a
// month is a calendar month, a day a calendar day).
struct Period {
  int months = 0;
  int days = 0;
  long long microseconds = 0;
};

bool is_leap_year(int year);
int days_in_month(int year, int month);

// `time` + `period`: months first (the day is cut to the last day of a shorter month), then
// days, then microseconds, as PostgreSQL adds an interval to a timestamp.
CivilTime add(const CivilTime& time, const Period& period);

// When a request received at `received` is due: GDPR one month, CCPA 45 days, other
// `other_deadline` (the tenant's setting).
CivilTime due_date(Regulation regulation, const CivilTime& received, const Period& other_deadline);

// The latest due date extensions may reach: GDPR three months after receipt, CCPA 90 days;
// nullopt for other (no limit).
std::optional<CivilTime> latest_due_date(Regulation regulation, const CivilTime& received);

// A job's deadline as privacy.extend_deadline sees it, times in the tenant's time zone.
struct DeadlineCase {
  long long job_id = 0;
  Regulation regulation = Regulation::Other;
  std::string time_zone;  // for messages only, e.g. "Europe/Berlin"
  CivilTime received;     // requested_at
  CivilTime due;          // due_at now (after earlier extensions)
  CivilTime now;
  int extensions_used = 0;
  Period other_deadline;  // the tenant's deadline, for regulation other
};

// The due date after extending `current.due` by `by`, or Error:
//   22023 when `by` is not positive (a negative part, or nothing at all), or the new due date
//         lies beyond what the regulation allows (the message names the latest allowed date);
//   55000 when the regulation allows no extension any more: GDPR and CCPA after their first
//         period has passed, CCPA when it was extended once already.
CivilTime extended_due_date(const DeadlineCase& current, const Period& by);

}  // namespace privacy::core
