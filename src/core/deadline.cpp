#include "core/deadline.hpp"

#include <cstdio>
#include <tuple>

#include "core/error.hpp"

namespace privacy::core {

namespace {

constexpr long long kMicrosPerDay = 86400LL * 1000000LL;

// Days since 1970-01-01 of a proleptic Gregorian date, and back (H. Hinnant's algorithms,
// public domain: http://howardhinnant.github.io/date_algorithms.html).
long long days_from_civil(int year, int month, int day) {
  long long y = year - (month <= 2 ? 1 : 0);
  long long era = (y >= 0 ? y : y - 399) / 400;
  long long year_of_era = y - era * 400;
  long long day_of_year = (153 * (month + (month > 2 ? -3 : 9)) + 2) / 5 + day - 1;
  long long day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
  return era * 146097 + day_of_era - 719468;
}

void civil_from_days(long long days, CivilTime& out) {
  days += 719468;
  long long era = (days >= 0 ? days : days - 146096) / 146097;
  long long day_of_era = days - era * 146097;
  long long year_of_era =
      (day_of_era - day_of_era / 1460 + day_of_era / 36524 - day_of_era / 146096) / 365;
  long long day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
  long long mp = (5 * day_of_year + 2) / 153;
  out.day = static_cast<int>(day_of_year - (153 * mp + 2) / 5 + 1);
  out.month = static_cast<int>(mp < 10 ? mp + 3 : mp - 9);
  out.year = static_cast<int>(year_of_era + era * 400 + (out.month <= 2 ? 1 : 0));
}

long long micros_of_day(const CivilTime& time) {
  return ((time.hour * 60LL + time.minute) * 60LL + time.second) * 1000000LL + time.microsecond;
}

void set_micros_of_day(CivilTime& time, long long micros) {
  time.microsecond = static_cast<int>(micros % 1000000);
  long long seconds = micros / 1000000;
  time.second = static_cast<int>(seconds % 60);
  time.minute = static_cast<int>(seconds / 60 % 60);
  time.hour = static_cast<int>(seconds / 3600);
}

auto as_tuple(const CivilTime& t) {
  return std::make_tuple(t.year, t.month, t.day, t.hour, t.minute, t.second, t.microsecond);
}

[[noreturn]] void bad_time(std::string_view text) {
  throw Error(sqlstate::kInvalidParameter, "\"" + std::string(text) + "\" is not a timestamp",
              "expected YYYY-MM-DD HH:MM:SS[.ffffff]");
}

bool is_positive(const Period& period) {
  bool negative = period.months < 0 || period.days < 0 || period.microseconds < 0;
  bool nothing = period.months == 0 && period.days == 0 && period.microseconds == 0;
  return !negative && !nothing;
}

// "2024-03-31 10:00:00 Europe/Berlin": a date as messages show it (seconds are enough there).
std::string shown(const CivilTime& time, const std::string& zone) {
  char text[48];
  std::snprintf(text, sizeof text, "%04d-%02d-%02d %02d:%02d:%02d", time.year, time.month, time.day,
                time.hour, time.minute, time.second);
  return zone.empty() ? std::string(text) : std::string(text) + " " + zone;
}

const char* law_of(Regulation regulation) {
  return regulation == Regulation::Gdpr ? "GDPR Art. 12(3)"
                                        : "CCPA (Cal. Civ. Code 1798.130(a)(2))";
}

// GDPR and CCPA allow an extension only while the requester can still be told of it in time:
// within the first period after receipt.
void require_first_period(const DeadlineCase& current) {
  CivilTime first_due = due_date(current.regulation, current.received, current.other_deadline);
  if (current.now < first_due) return;
  std::string who = current.regulation == Regulation::Gdpr ? "the data subject" : "the consumer";
  throw Error(sqlstate::kObjectNotInPrerequisiteState,
              "the deadline of job " + std::to_string(current.job_id) +
                  " can no longer be extended: " + law_of(current.regulation) +
                  " allows an extension only if " + who +
                  " is told within the first period after receipt, which ended at " +
                  shown(first_due, current.time_zone),
              "the job was received at " + shown(current.received, current.time_zone) +
                  " and is due at " + shown(current.due, current.time_zone),
              "Answer the request now; privacy.sla_report() counts it as late.");
}

void require_no_earlier_extension(const DeadlineCase& current) {
  if (current.regulation != Regulation::Ccpa || current.extensions_used == 0) return;
  throw Error(sqlstate::kObjectNotInPrerequisiteState,
              "the deadline of job " + std::to_string(current.job_id) + " was extended already: " +
                  law_of(current.regulation) + " allows one extension of at most 45 days",
              "the job is due at " + shown(current.due, current.time_zone),
              "Answer the request by then; privacy.sla_report() counts a later answer as late.");
}

}  // namespace

std::string_view to_string(Regulation regulation) {
  switch (regulation) {
    case Regulation::Gdpr:
      return "gdpr";
    case Regulation::Ccpa:
      return "ccpa";
    case Regulation::Other:
      return "other";
  }
  return "other";
}

std::optional<Regulation> parse_regulation(std::string_view text) {
  for (Regulation regulation : {Regulation::Gdpr, Regulation::Ccpa, Regulation::Other}) {
    if (text == to_string(regulation)) return regulation;
  }
  return std::nullopt;
}

bool operator==(const CivilTime& a, const CivilTime& b) { return as_tuple(a) == as_tuple(b); }
bool operator<(const CivilTime& a, const CivilTime& b) { return as_tuple(a) < as_tuple(b); }

bool is_leap_year(int year) { return (year % 4 == 0 && year % 100 != 0) || year % 400 == 0; }

int days_in_month(int year, int month) {
  static constexpr int kDays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  return month == 2 && is_leap_year(year) ? 29 : kDays[month - 1];
}

CivilTime parse_civil_time(std::string_view text) {
  CivilTime time;
  char fraction[8] = "";
  int consumed = 0;
  std::string copy(text);
  int fields = std::sscanf(copy.c_str(), "%4d-%2d-%2d %2d:%2d:%2d%n", &time.year, &time.month,
                           &time.day, &time.hour, &time.minute, &time.second, &consumed);
  if (fields != 6) bad_time(text);
  std::string_view rest = text.substr(static_cast<size_t>(consumed));
  if (!rest.empty()) {
    if (rest[0] != '.' || rest.size() < 2 || rest.size() > 7) bad_time(text);
    for (size_t i = 1; i < rest.size(); ++i) {
      if (rest[i] < '0' || rest[i] > '9') bad_time(text);
      fraction[i - 1] = rest[i];
    }
    for (size_t i = rest.size() - 1; i < 6; ++i) fraction[i] = '0';
    time.microsecond = std::stoi(fraction);
  }
  if (time.month < 1 || time.month > 12 || time.day < 1 ||
      time.day > days_in_month(time.year, time.month) || time.hour > 23 || time.minute > 59 ||
      time.second > 59) {
    bad_time(text);
  }
  return time;
}

std::string to_string(const CivilTime& time) {
  char text[40];
  std::snprintf(text, sizeof text, "%04d-%02d-%02d %02d:%02d:%02d.%06d", time.year, time.month,
                time.day, time.hour, time.minute, time.second, time.microsecond);
  return text;
}

CivilTime add(const CivilTime& time, const Period& period) {
  CivilTime out = time;
  int month_index = time.year * 12 + (time.month - 1) + period.months;
  out.year = month_index / 12;
  out.month = month_index % 12 + 1;
  if (out.day > days_in_month(out.year, out.month)) out.day = days_in_month(out.year, out.month);

  long long micros = micros_of_day(out) + period.microseconds;
  long long carry_days = micros / kMicrosPerDay;
  micros %= kMicrosPerDay;
  if (micros < 0) {
    micros += kMicrosPerDay;
    --carry_days;
  }
  long long days = days_from_civil(out.year, out.month, out.day) + period.days + carry_days;
  civil_from_days(days, out);
  set_micros_of_day(out, micros);
  return out;
}

CivilTime due_date(Regulation regulation, const CivilTime& received, const Period& other_deadline) {
  switch (regulation) {
    case Regulation::Gdpr:
      return add(received, Period{1, 0, 0});
    case Regulation::Ccpa:
      return add(received, Period{0, 45, 0});
    case Regulation::Other:
      return add(received, other_deadline);
  }
  return add(received, other_deadline);
}

std::optional<CivilTime> latest_due_date(Regulation regulation, const CivilTime& received) {
  switch (regulation) {
    case Regulation::Gdpr:
      return add(received, Period{3, 0, 0});
    case Regulation::Ccpa:
      return add(received, Period{0, 90, 0});
    case Regulation::Other:
      return std::nullopt;
  }
  return std::nullopt;
}

CivilTime extended_due_date(const DeadlineCase& current, const Period& by) {
  if (!is_positive(by)) {
    throw Error(sqlstate::kInvalidParameter, "by must be a positive interval",
                "an extension moves the due date later; no part of it may be negative",
                "Pass e.g. '14 days'.");
  }
  CivilTime extended = add(current.due, by);
  if (current.regulation == Regulation::Other) return extended;
  require_first_period(current);
  require_no_earlier_extension(current);
  CivilTime latest = *latest_due_date(current.regulation, current.received);
  if (latest < extended) {
    std::string allowed = current.regulation == Regulation::Gdpr
                              ? "at most two further months, until three months after receipt"
                              : "one extension of at most 45 days";
    throw Error(sqlstate::kInvalidParameter,
                "the deadline of job " + std::to_string(current.job_id) +
                    " cannot be extended to " + shown(extended, current.time_zone) + ": " +
                    law_of(current.regulation) + " allows " + allowed,
                "the job was received at " + shown(current.received, current.time_zone) +
                    " and is due at " + shown(current.due, current.time_zone),
                "Extend it by less: the latest due date allowed is " +
                    shown(latest, current.time_zone) + ".");
  }
  return extended;
}

}  // namespace privacy::core
