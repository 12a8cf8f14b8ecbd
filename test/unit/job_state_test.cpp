#include "core/job_state.hpp"

#include <gtest/gtest.h>

#include <set>
#include <string>
#include <utility>

#include "core/error.hpp"

using namespace privacy::core;

namespace {

using S = JobStatus;

// The transition table of DESIGN.md section 3, restated independently of the implementation.
const std::set<std::pair<S, S>> kExpectedAllowed = {
    {S::Pending, S::Approved},      {S::Pending, S::Rejected},     {S::Pending, S::Cancelled},
    {S::Approved, S::Processing},   {S::Approved, S::Cancelled},   {S::Processing, S::Completed},
    {S::Processing, S::Failed},     {S::Processing, S::Cancelled}, {S::Failed, S::Approved},
};

std::string name(S status) { return std::string(to_string(status)); }

// Runs check_transition and returns the Error it threw; fails the test if it did not throw.
Error refusal_of(long long job_id, S from, S to) {
  try {
    check_transition(job_id, from, to);
  } catch (const Error& error) {
    return error;
  }
  ADD_FAILURE() << name(from) << " -> " << name(to) << " did not throw";
  return Error("", "");
}

}  // namespace

TEST(JobState, NamesAreTheSqlLabels) {
  EXPECT_EQ(to_string(S::Pending), "pending");
  EXPECT_EQ(to_string(S::Approved), "approved");
  EXPECT_EQ(to_string(S::Processing), "processing");
  EXPECT_EQ(to_string(S::Completed), "completed");
  EXPECT_EQ(to_string(S::Failed), "failed");
  EXPECT_EQ(to_string(S::Rejected), "rejected");
  EXPECT_EQ(to_string(S::Cancelled), "cancelled");
  EXPECT_EQ(to_string(JobKind::Export), "export");
  EXPECT_EQ(to_string(JobKind::Erase), "erase");
  EXPECT_EQ(to_string(JobKind::Purge), "purge");
}

TEST(JobState, ParseIsTheInverseOfToString) {
  for (S status : kAllJobStatuses) EXPECT_EQ(parse_job_status(to_string(status)), status);
  for (JobKind kind : {JobKind::Export, JobKind::Erase, JobKind::Purge})
    EXPECT_EQ(parse_job_kind(to_string(kind)), kind);
}

TEST(JobState, ParseRefusesUnknownAndDifferentlyCasedText) {
  EXPECT_EQ(parse_job_status("Pending"), std::nullopt);
  EXPECT_EQ(parse_job_status(""), std::nullopt);
  EXPECT_EQ(parse_job_status("done"), std::nullopt);
  EXPECT_EQ(parse_job_status("pending "), std::nullopt);
  EXPECT_EQ(parse_job_kind("ERASE"), std::nullopt);
  EXPECT_EQ(parse_job_kind("delete"), std::nullopt);
}

TEST(JobState, EveryPairFollowsTheTable) {
  for (S from : kAllJobStatuses)
    for (S to : kAllJobStatuses)
      EXPECT_EQ(transition_allowed(from, to), kExpectedAllowed.count({from, to}) == 1)
          << name(from) << " -> " << name(to);
}

TEST(JobState, AllowedPairsPassCheckTransition) {
  for (const auto& [from, to] : kExpectedAllowed) EXPECT_NO_THROW(check_transition(1, from, to));
}

TEST(JobState, EveryRefusedPairThrows55000NamingBothStatuses) {
  for (S from : kAllJobStatuses) {
    for (S to : kAllJobStatuses) {
      if (kExpectedAllowed.count({from, to})) continue;
      Error error = refusal_of(42, from, to);
      EXPECT_EQ(error.sqlstate(), "55000");
      EXPECT_EQ(std::string(error.what()),
                "job 42 is " + name(from) + " and cannot become " + name(to));
      EXPECT_FALSE(error.detail().empty());
      EXPECT_FALSE(error.hint().empty()) << name(from) << " -> " << name(to);
    }
  }
}

TEST(JobState, NoCrashRequeueFromProcessingToApproved) {
  EXPECT_FALSE(transition_allowed(S::Processing, S::Approved));
  EXPECT_FALSE(transition_allowed(S::Processing, S::Pending));
}

TEST(JobState, DetailListsWhatIsAllowed) {
  EXPECT_EQ(refusal_of(1, S::Completed, S::Approved).detail(),
            "from completed nothing is allowed: it is final");
  EXPECT_EQ(refusal_of(1, S::Pending, S::Completed).detail(),
            "from pending a job may become approved, rejected or cancelled");
  EXPECT_EQ(refusal_of(1, S::Approved, S::Failed).detail(),
            "from approved a job may become processing or cancelled");
  EXPECT_EQ(refusal_of(1, S::Failed, S::Cancelled).detail(),
            "from failed a job may become approved");
}

TEST(JobState, HintsSayWhatWouldSucceed) {
  EXPECT_NE(refusal_of(1, S::Completed, S::Approved).hint().find("submit a new request"),
            std::string::npos);
  EXPECT_NE(refusal_of(1, S::Cancelled, S::Approved).hint().find("submit a new request"),
            std::string::npos);
  EXPECT_NE(refusal_of(1, S::Processing, S::Approved).hint().find("already running"),
            std::string::npos);
  EXPECT_NE(refusal_of(1, S::Pending, S::Processing).hint().find("privacy.approve()"),
            std::string::npos);
  EXPECT_NE(refusal_of(1, S::Failed, S::Processing).hint().find("privacy.retry()"),
            std::string::npos);
  EXPECT_NE(refusal_of(1, S::Approved, S::Approved).hint().find("already approved"),
            std::string::npos);
}

TEST(JobState, AllowedFromIsTheTableRow) {
  EXPECT_EQ(allowed_from(S::Pending), (std::vector<S>{S::Approved, S::Rejected, S::Cancelled}));
  EXPECT_EQ(allowed_from(S::Approved), (std::vector<S>{S::Processing, S::Cancelled}));
  EXPECT_EQ(allowed_from(S::Processing),
            (std::vector<S>{S::Completed, S::Failed, S::Cancelled}));
  EXPECT_EQ(allowed_from(S::Failed), (std::vector<S>{S::Approved}));
  EXPECT_TRUE(allowed_from(S::Completed).empty());
  EXPECT_TRUE(allowed_from(S::Rejected).empty());
  EXPECT_TRUE(allowed_from(S::Cancelled).empty());
}

TEST(JobState, TerminalMeansNothingIsAllowed) {
  for (S status : kAllJobStatuses)
    EXPECT_EQ(is_terminal(status), allowed_from(status).empty()) << name(status);
  EXPECT_FALSE(is_terminal(S::Failed));
}

TEST(JobState, AuditActionOfEachAllowedTransition) {
  EXPECT_EQ(audit_action_for(S::Pending, S::Approved), "approved");
  EXPECT_EQ(audit_action_for(S::Failed, S::Approved), "retried");
  EXPECT_EQ(audit_action_for(S::Pending, S::Rejected), "rejected");
  EXPECT_EQ(audit_action_for(S::Pending, S::Cancelled), "cancelled");
  EXPECT_EQ(audit_action_for(S::Approved, S::Cancelled), "cancelled");
  EXPECT_EQ(audit_action_for(S::Processing, S::Cancelled), "cancelled");
  EXPECT_EQ(audit_action_for(S::Approved, S::Processing), "started");
  EXPECT_EQ(audit_action_for(S::Processing, S::Completed), "completed");
  EXPECT_EQ(audit_action_for(S::Processing, S::Failed), "failed");
}

TEST(JobState, AuditActionOfARefusedTransitionIsAnInternalError) {
  for (S from : kAllJobStatuses) {
    for (S to : kAllJobStatuses) {
      if (kExpectedAllowed.count({from, to})) continue;
      try {
        audit_action_for(from, to);
        ADD_FAILURE() << name(from) << " -> " << name(to) << " did not throw";
      } catch (const Error& error) {
        EXPECT_EQ(error.sqlstate(), "XX000");
      }
    }
  }
}
