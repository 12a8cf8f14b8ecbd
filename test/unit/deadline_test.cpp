#include "core/deadline.hpp"

#include <gtest/gtest.h>

#include "core/error.hpp"

using privacy::core::add;
using privacy::core::CivilTime;
using privacy::core::DeadlineCase;
using privacy::core::due_date;
using privacy::core::Error;
using privacy::core::extended_due_date;
using privacy::core::latest_due_date;
using privacy::core::parse_civil_time;
using privacy::core::Period;
using privacy::core::Regulation;

namespace {

CivilTime at(const char* text) { return parse_civil_time(text); }
std::string text(const CivilTime& time) { return privacy::core::to_string(time); }

const Period kThirtyDays{0, 30, 0};

// A job received at `received`, due as its regulation says, looked at `now`.
DeadlineCase job(Regulation regulation, const char* received, const char* now) {
  DeadlineCase current;
  current.job_id = 42;
  current.regulation = regulation;
  current.time_zone = "Europe/Berlin";
  current.received = at(received);
  current.due = due_date(regulation, current.received, kThirtyDays);
  current.now = at(now);
  current.other_deadline = kThirtyDays;
  return current;
}

Error refusal(const DeadlineCase& current, const Period& by) {
  try {
    extended_due_date(current, by);
  } catch (const Error& error) {
    return error;
  }
  ADD_FAILURE() << "the extension was allowed";
  return Error("00000", "allowed");
}

bool contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

}  // namespace

TEST(Deadline, LeapYears) {
  EXPECT_TRUE(privacy::core::is_leap_year(2024));
  EXPECT_TRUE(privacy::core::is_leap_year(2000));
  EXPECT_FALSE(privacy::core::is_leap_year(1900));
  EXPECT_FALSE(privacy::core::is_leap_year(2023));
  EXPECT_EQ(privacy::core::days_in_month(2024, 2), 29);
  EXPECT_EQ(privacy::core::days_in_month(2100, 2), 28);
  EXPECT_EQ(privacy::core::days_in_month(2023, 4), 30);
  EXPECT_EQ(privacy::core::days_in_month(2023, 12), 31);
}

TEST(Deadline, ParsesAndPrintsPostgresTimestamps) {
  EXPECT_EQ(text(at("2024-01-31 10:00:00")), "2024-01-31 10:00:00.000000");
  EXPECT_EQ(text(at("2024-01-31 10:00:00.25")), "2024-01-31 10:00:00.250000");
  EXPECT_EQ(text(at("2024-01-31 23:59:59.999999")), "2024-01-31 23:59:59.999999");
  for (const char* bad : {"2023-02-29 00:00:00", "2024-13-01 00:00:00", "2024-01-01",
                          "2024-01-01 00:00:00+01", "2024-01-01 00:00:00.1234567", "yesterday"}) {
    EXPECT_THROW(parse_civil_time(bad), Error) << bad;
  }
}

// GDPR: one calendar month, the same day of the next month or that month's last day.
TEST(Deadline, GdprMonthEnds) {
  struct Case {
    const char* received;
    const char* due;
  } cases[] = {
      {"2024-03-05 09:30:00", "2024-04-05 09:30:00.000000"},  // EDPB's example: 5 March -> 5 April
      {"2023-01-31 10:00:00", "2023-02-28 10:00:00.000000"},  // no 31 February
      {"2024-01-31 10:00:00", "2024-02-29 10:00:00.000000"},  // leap year
      {"2024-01-29 10:00:00", "2024-02-29 10:00:00.000000"},
      {"2023-01-29 10:00:00", "2023-02-28 10:00:00.000000"},
      {"2024-02-29 10:00:00",
       "2024-03-29 10:00:00.000000"},  // from a leap day: same day next month
      {"2024-03-31 23:59:59.5", "2024-04-30 23:59:59.500000"},
      {"2024-08-31 00:00:00", "2024-09-30 00:00:00.000000"},
      {"2023-12-31 12:00:00", "2024-01-31 12:00:00.000000"},  // across the year
      {"2100-01-31 08:00:00", "2100-02-28 08:00:00.000000"},  // 2100 is no leap year
  };
  for (const Case& c : cases) {
    EXPECT_EQ(text(due_date(Regulation::Gdpr, at(c.received), kThirtyDays)), c.due) << c.received;
  }
  EXPECT_EQ(text(*latest_due_date(Regulation::Gdpr, at("2023-11-30 10:00:00"))),
            "2024-02-29 10:00:00.000000");
  EXPECT_EQ(text(*latest_due_date(Regulation::Gdpr, at("2024-01-31 10:00:00"))),
            "2024-04-30 10:00:00.000000");
}

// CCPA: 45 calendar days, February's length and leap days included.
TEST(Deadline, CcpaDays) {
  EXPECT_EQ(text(due_date(Regulation::Ccpa, at("2024-01-20 15:00:00"), kThirtyDays)),
            "2024-03-05 15:00:00.000000");
  EXPECT_EQ(text(due_date(Regulation::Ccpa, at("2023-01-20 15:00:00"), kThirtyDays)),
            "2023-03-06 15:00:00.000000");
  EXPECT_EQ(text(due_date(Regulation::Ccpa, at("2023-12-01 00:00:00"), kThirtyDays)),
            "2024-01-15 00:00:00.000000");
  EXPECT_EQ(text(*latest_due_date(Regulation::Ccpa, at("2024-01-01 00:00:00"))),
            "2024-03-31 00:00:00.000000");
}

TEST(Deadline, OtherUsesTheTenantsDeadline) {
  EXPECT_EQ(text(due_date(Regulation::Other, at("2024-02-15 06:00:00"), kThirtyDays)),
            "2024-03-16 06:00:00.000000");
  EXPECT_EQ(
      text(due_date(Regulation::Other, at("2024-01-31 06:00:00"), Period{1, 2, 3600LL * 1000000})),
      "2024-03-02 07:00:00.000000");
  EXPECT_FALSE(latest_due_date(Regulation::Other, at("2024-01-31 06:00:00")).has_value());
}

// Adding an interval works like PostgreSQL: months, then days, then time, carrying across days.
TEST(Deadline, AddsLikePostgres) {
  EXPECT_EQ(text(add(at("2024-01-31 23:30:00"), Period{1, 1, 3600LL * 1000000})),
            "2024-03-02 00:30:00.000000");
  EXPECT_EQ(text(add(at("2024-12-31 23:59:59.999999"), Period{0, 0, 1})),
            "2025-01-01 00:00:00.000000");
  EXPECT_EQ(text(add(at("2024-03-10 12:00:00"), Period{0, 0, -13LL * 3600 * 1000000})),
            "2024-03-09 23:00:00.000000");
  EXPECT_EQ(text(add(at("2024-11-30 00:00:00"), Period{14, 0, 0})), "2026-01-30 00:00:00.000000");
}

TEST(Deadline, GdprExtendsUpToThreeMonthsAfterReceipt) {
  DeadlineCase current = job(Regulation::Gdpr, "2024-01-31 10:00:00", "2024-02-10 00:00:00");
  EXPECT_EQ(text(current.due), "2024-02-29 10:00:00.000000");
  EXPECT_EQ(text(extended_due_date(current, Period{2, 0, 0})), "2024-04-29 10:00:00.000000");
  // Several extensions are fine while their total stays within two further months.
  current.due = extended_due_date(current, Period{1, 0, 0});
  current.extensions_used = 1;
  EXPECT_EQ(text(current.due), "2024-03-29 10:00:00.000000");
  EXPECT_EQ(text(extended_due_date(current, Period{0, 32, 0})), "2024-04-30 10:00:00.000000");
  Error beyond = refusal(current, Period{0, 33, 0});
  EXPECT_EQ(beyond.sqlstate(), "22023");
  EXPECT_TRUE(
      contains(beyond.what(), "job 42 cannot be extended to 2024-05-01 10:00:00 Europe/Berlin"));
  EXPECT_TRUE(contains(beyond.what(), "GDPR Art. 12(3)"));
  EXPECT_TRUE(contains(beyond.hint(), "2024-04-30 10:00:00 Europe/Berlin"));
}

TEST(Deadline, GdprExtensionOnlyWithinTheFirstMonth) {
  DeadlineCase current = job(Regulation::Gdpr, "2024-01-31 10:00:00", "2024-02-29 09:59:59");
  EXPECT_NO_THROW(extended_due_date(current, Period{0, 1, 0}));
  current.now = at("2024-02-29 10:00:00");
  Error late = refusal(current, Period{0, 1, 0});
  EXPECT_EQ(late.sqlstate(), "55000");
  EXPECT_TRUE(contains(late.what(), "can no longer be extended"));
  EXPECT_TRUE(contains(late.what(), "2024-02-29 10:00:00 Europe/Berlin"));
  // Even after an extension: the data subject must have been told within the first month.
  current.due = at("2024-03-29 10:00:00");
  current.extensions_used = 1;
  current.now = at("2024-03-01 00:00:00");
  EXPECT_EQ(refusal(current, Period{0, 1, 0}).sqlstate(), "55000");
}

TEST(Deadline, CcpaExtendsOnceBy45Days) {
  DeadlineCase current = job(Regulation::Ccpa, "2024-01-20 15:00:00", "2024-02-01 00:00:00");
  EXPECT_EQ(text(extended_due_date(current, Period{0, 45, 0})), "2024-04-19 15:00:00.000000");
  Error too_far = refusal(current, Period{0, 46, 0});
  EXPECT_EQ(too_far.sqlstate(), "22023");
  EXPECT_TRUE(contains(too_far.what(), "one extension of at most 45 days"));
  EXPECT_EQ(refusal(current, Period{2, 0, 0}).sqlstate(), "22023");
  current.due = extended_due_date(current, Period{0, 10, 0});
  current.extensions_used = 1;
  Error twice = refusal(current, Period{0, 1, 0});
  EXPECT_EQ(twice.sqlstate(), "55000");
  EXPECT_TRUE(contains(twice.what(), "was extended already"));
  current = job(Regulation::Ccpa, "2024-01-20 15:00:00", "2024-03-05 15:00:00");
  EXPECT_EQ(refusal(current, Period{0, 1, 0}).sqlstate(), "55000");
}

TEST(Deadline, OtherExtendsFreelyButOnlyForward) {
  DeadlineCase current = job(Regulation::Other, "2024-01-01 00:00:00", "2025-01-01 00:00:00");
  current.extensions_used = 5;
  EXPECT_EQ(text(extended_due_date(current, Period{12, 0, 0})), "2025-01-31 00:00:00.000000");
  EXPECT_EQ(refusal(current, Period{0, 0, 0}).sqlstate(), "22023");
  EXPECT_EQ(refusal(current, Period{1, -40, 0}).sqlstate(), "22023");
  EXPECT_EQ(refusal(current, Period{0, 0, -1}).sqlstate(), "22023");
}

TEST(Deadline, RegulationNames) {
  EXPECT_EQ(privacy::core::parse_regulation("gdpr"), Regulation::Gdpr);
  EXPECT_EQ(privacy::core::parse_regulation("ccpa"), Regulation::Ccpa);
  EXPECT_EQ(privacy::core::parse_regulation("other"), Regulation::Other);
  EXPECT_FALSE(privacy::core::parse_regulation("GDPR").has_value());
  EXPECT_EQ(privacy::core::to_string(Regulation::Ccpa), "ccpa");
}
