#include "core/job_state.hpp"

#include <gtest/gtest.h>

#include <map>
#include <set>
#include <string>
#include <utility>

#include "core/error.hpp"

using namespace privacy::core;

namespace {

using S = JobStatus;
using A = JobAction;

// The action table of docs/jobs.md, restated independently of the implementation:
// (action, from) -> to.
const std::map<std::pair<A, S>, S> kExpectedAllowed = {
    {{A::Approve, S::Pending}, S::Approved},      {{A::Reject, S::Pending}, S::Rejected},
    {{A::Cancel, S::Pending}, S::Cancelled},      {{A::Cancel, S::Approved}, S::Cancelled},
    {{A::Cancel, S::Processing}, S::Cancelled},   {{A::Retry, S::Failed}, S::Approved},
    {{A::Retry, S::Cancelled}, S::Approved},      {{A::Start, S::Approved}, S::Processing},
    {{A::Complete, S::Processing}, S::Completed}, {{A::Fail, S::Processing}, S::Failed},
    {{A::Fail, S::Approved}, S::Failed},  // a job that could not even start
};

std::string name(S status) { return std::string(to_string(status)); }
std::string name(A action) { return std::string(to_string(action)); }

// Runs decide and returns the Error it threw; fails the test if it did not throw.
Error refusal_of(long long job_id, S from, A action, const ActionContext& context = {}) {
  try {
    decide(job_id, from, action, context);
  } catch (const Error& error) {
    return error;
  }
  ADD_FAILURE() << name(action) << " from " << name(from) << " did not throw";
  return Error("", "");
}

ActionContext approval_by_requester(bool distinct_required) {
  ActionContext context;
  context.requester = "alice";
  context.approver_is_requester = true;
  context.distinct_approver_required = distinct_required;
  return context;
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
  EXPECT_EQ(to_string(JobKind::Restrict), "restrict");
  EXPECT_EQ(to_string(A::Retry), "retry");
}

TEST(JobState, ParseIsTheInverseOfToString) {
  for (S status : kAllJobStatuses) EXPECT_EQ(parse_job_status(to_string(status)), status);
  for (JobKind kind : {JobKind::Export, JobKind::Erase, JobKind::Purge, JobKind::Restrict})
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

TEST(JobState, EveryActionFollowsTheTable) {
  for (A action : kStatusActions)
    for (S from : kAllJobStatuses)
      EXPECT_EQ(action_allowed_from(action, from), kExpectedAllowed.count({action, from}) == 1)
          << name(action) << " from " << name(from);
}

TEST(JobState, AllowedActionsLeadWhereTheTableSays) {
  for (const auto& [step, to] : kExpectedAllowed) EXPECT_EQ(decide(1, step.second, step.first), to);
}

TEST(JobState, EveryRefusedActionThrows55000NamingStatusAndAction) {
  for (A action : kStatusActions) {
    for (S from : kAllJobStatuses) {
      if (kExpectedAllowed.count({action, from})) continue;
      Error error = refusal_of(42, from, action);
      EXPECT_EQ(error.sqlstate(), "55000");
      EXPECT_EQ(std::string(error.what()),
                "job 42 is " + name(from) + " and cannot be " + std::string(audit_action(action)));
      EXPECT_FALSE(error.detail().empty());
      EXPECT_FALSE(error.hint().empty()) << name(action) << " from " << name(from);
    }
  }
}

// Only approve leads from pending to approved: retry, start and the rest cannot skip approval.
TEST(JobState, NothingButApproveLeadsPendingToApproved) {
  for (A action : kStatusActions) {
    if (action == A::Approve) continue;
    bool reaches_approved =
        action_allowed_from(action, S::Pending) && target_status(action) == S::Approved;
    EXPECT_FALSE(reaches_approved) << name(action);
  }
  Error retry = refusal_of(7, S::Pending, A::Retry);
  EXPECT_EQ(retry.sqlstate(), "55000");
  EXPECT_NE(retry.hint().find("privacy.approve()"), std::string::npos);
}

TEST(JobState, RetryOnlyFromFailedOrCancelled) {
  for (S from : kAllJobStatuses) {
    EXPECT_EQ(action_allowed_from(A::Retry, from), from == S::Failed || from == S::Cancelled)
        << name(from);
  }
}

TEST(JobState, ACancelledJobThatWasNeverApprovedIsNotRetried) {
  ActionContext never_approved;
  never_approved.was_approved = false;
  Error error = refusal_of(9, S::Cancelled, A::Retry, never_approved);
  EXPECT_EQ(error.sqlstate(), "55000");
  EXPECT_EQ(std::string(error.what()),
            "job 9 was cancelled before it was approved and cannot be retried");
  EXPECT_EQ(decide(9, S::Cancelled, A::Retry), S::Approved);  // approved before: allowed
  EXPECT_EQ(decide(9, S::Failed, A::Retry, never_approved), S::Approved);  // a failed job ran
}

TEST(JobState, TheRequesterDoesNotApproveTheirOwnJob) {
  Error error = refusal_of(5, S::Pending, A::Approve, approval_by_requester(true));
  EXPECT_EQ(error.sqlstate(), "42501");
  EXPECT_EQ(std::string(error.what()), "job 5 was requested by alice, who may not approve it");
  EXPECT_NE(error.hint().find("privacy.approve(5)"), std::string::npos);
  EXPECT_EQ(decide(5, S::Pending, A::Approve, approval_by_requester(false)), S::Approved);
  // The status is checked first: approving an approved job is 55000 whoever asks.
  EXPECT_EQ(refusal_of(5, S::Approved, A::Approve, approval_by_requester(true)).sqlstate(),
            "55000");
}

TEST(JobState, NoApprovalFromCodeRunningForAnotherRole) {
  ActionContext inside;
  inside.inside_restricted_operation = true;
  Error error = refusal_of(6, S::Pending, A::Approve, inside);
  EXPECT_EQ(error.sqlstate(), "42501");
  EXPECT_EQ(std::string(error.what()),
            "job 6 cannot be approved by code that runs on behalf of another role");
  inside.distinct_approver_required = false;
  EXPECT_EQ(refusal_of(6, S::Pending, A::Approve, inside).sqlstate(), "42501");
  EXPECT_EQ(decide(6, S::Pending, A::Reject, inside), S::Rejected);  // saying no is never a bypass
}

TEST(JobState, NoCrashRequeueFromProcessingToApproved) {
  for (A action : kStatusActions) {
    if (!action_allowed_from(action, S::Processing)) continue;
    EXPECT_NE(target_status(action), S::Approved) << name(action);
  }
}

TEST(JobState, DetailListsWhatIsAllowed) {
  EXPECT_EQ(refusal_of(1, S::Completed, A::Approve).detail(),
            "from completed nothing is allowed: it is final");
  EXPECT_EQ(refusal_of(1, S::Pending, A::Complete).detail(),
            "from pending a job may be approved, rejected or cancelled");
  EXPECT_EQ(refusal_of(1, S::Approved, A::Complete).detail(),
            "from approved a job may be cancelled, started or failed");
  EXPECT_EQ(refusal_of(1, S::Failed, A::Cancel).detail(), "from failed a job may be retried");
  EXPECT_EQ(refusal_of(1, S::Cancelled, A::Cancel).detail(), "from cancelled a job may be retried");
}

TEST(JobState, HintsSayWhatWouldSucceed) {
  EXPECT_NE(refusal_of(1, S::Completed, A::Retry).hint().find("submit a new request"),
            std::string::npos);
  EXPECT_NE(refusal_of(1, S::Rejected, A::Retry).hint().find("submit a new request"),
            std::string::npos);
  EXPECT_NE(refusal_of(1, S::Cancelled, A::Approve).hint().find("privacy.retry()"),
            std::string::npos);
  EXPECT_NE(refusal_of(1, S::Processing, A::Retry).hint().find("already running"),
            std::string::npos);
  EXPECT_NE(refusal_of(1, S::Pending, A::Start).hint().find("privacy.approve()"),
            std::string::npos);
  EXPECT_NE(refusal_of(1, S::Failed, A::Start).hint().find("privacy.retry()"), std::string::npos);
  EXPECT_NE(refusal_of(1, S::Approved, A::Approve).hint().find("already approved"),
            std::string::npos);
  EXPECT_NE(refusal_of(1, S::Approved, A::Retry).hint().find("already approved"),
            std::string::npos);
}

TEST(JobState, ActionsFromIsTheTableColumn) {
  EXPECT_EQ(actions_from(S::Pending), (std::vector<A>{A::Approve, A::Reject, A::Cancel}));
  EXPECT_EQ(actions_from(S::Approved), (std::vector<A>{A::Cancel, A::Start, A::Fail}));
  EXPECT_EQ(actions_from(S::Processing), (std::vector<A>{A::Cancel, A::Complete, A::Fail}));
  EXPECT_EQ(actions_from(S::Failed), (std::vector<A>{A::Retry}));
  EXPECT_EQ(actions_from(S::Cancelled), (std::vector<A>{A::Retry}));
  EXPECT_TRUE(actions_from(S::Completed).empty());
  EXPECT_TRUE(actions_from(S::Rejected).empty());
}

TEST(JobState, TerminalMeansNothingIsAllowed) {
  for (S status : kAllJobStatuses)
    EXPECT_EQ(is_terminal(status), actions_from(status).empty()) << name(status);
  EXPECT_FALSE(is_terminal(S::Failed));
  EXPECT_FALSE(is_terminal(S::Cancelled));
}

TEST(JobState, AuditActionOfEachAction) {
  const std::set<std::pair<A, std::string>> expected = {
      {A::Approve, "approved"},
      {A::Reject, "rejected"},
      {A::Cancel, "cancelled"},
      {A::Retry, "retried"},
      {A::Start, "started"},
      {A::Complete, "completed"},
      {A::Fail, "failed"},
      {A::CloseWindow, "finalization_started"},
      {A::HoldFinalization, "finalization_held"},
      {A::FinishFinalization, "finalized"},
      {A::FinishWithErrors, "finalized_with_errors"},
      {A::ResumeFinalization, "finalization_resumed"},
      {A::ClearItems, "finalized"}};
  for (const auto& [action, audit] : expected)
    EXPECT_EQ(audit_action(action), audit) << name(action);
}

// ----- finalization (docs/jobs.md, "Lifecycle") ---------------------------------------------

using F = FinalizationState;

// The finalization table, restated: (action, from) -> to.
const std::map<std::pair<A, F>, F> kExpectedFinalization = {
    {{A::CloseWindow, F::AwaitingWindow}, F::Finalizing},
    {{A::HoldFinalization, F::Finalizing}, F::Held},
    {{A::FinishFinalization, F::Finalizing}, F::Finalized},
    {{A::FinishWithErrors, F::Finalizing}, F::FinalizedWithErrors},
    {{A::ResumeFinalization, F::Held}, F::Finalizing},
    {{A::ResumeFinalization, F::FinalizedWithErrors}, F::Finalizing},
    {{A::ClearItems, F::FinalizedWithErrors}, F::Finalized},
};

ActionContext erase_context(bool reached_processing, bool window_closed = true) {
  ActionContext context;
  context.kind = JobKind::Erase;
  context.reached_processing = reached_processing;
  context.window_closed = window_closed;
  return context;
}

TEST(JobState, FinalizationNamesAreTheSqlLabels) {
  for (F state : kAllFinalizationStates)
    EXPECT_EQ(parse_finalization_state(to_string(state)), state);
  EXPECT_EQ(to_string(F::FinalizedWithErrors), "finalized_with_errors");
  EXPECT_EQ(parse_finalization_state("Held"), std::nullopt);
}

TEST(JobState, EveryFinalizationActionFollowsTheTable) {
  for (A action : kFinalizationActions) {
    EXPECT_TRUE(is_finalization_action(action));
    for (F from : kAllFinalizationStates) {
      bool allowed = kExpectedFinalization.count({action, from}) == 1;
      EXPECT_EQ(action_allowed_from(action, from), allowed)
          << name(action) << " from " << to_string(from);
      for (S status : {S::Completed, S::Cancelled, S::Failed}) {
        JobState state{status, from};
        if (allowed) {
          JobState to = decide(3, state, action, erase_context(true));
          EXPECT_EQ(to, (JobState{status, kExpectedFinalization.at({action, from})}));
        } else {
          Error error("", "");
          try {
            decide(3, state, action, erase_context(true));
          } catch (const Error& e) {
            error = e;
          }
          EXPECT_EQ(error.sqlstate(), "55000") << name(action) << " from " << to_string(from);
        }
      }
    }
    for (S status : kAllJobStatuses)
      EXPECT_FALSE(action_allowed_from(action, status)) << name(action);
  }
}

TEST(JobState, AnEraseThatMarkedRowsAwaitsItsWindowHoweverItStops) {
  for (A stop : {A::Complete, A::Cancel, A::Fail}) {
    JobState to = decide(4, JobState{S::Processing, std::nullopt}, stop, erase_context(true));
    EXPECT_EQ(to.finalization, F::AwaitingWindow) << name(stop);
    EXPECT_EQ(to.status, target_status(stop));
  }
  // Cancelled before it ever ran: nothing was marked, nothing to finalize.
  EXPECT_EQ(
      decide(4, JobState{S::Approved, std::nullopt}, A::Cancel, erase_context(false)).finalization,
      std::nullopt);
  // Cancelled while queued again after a retry: the earlier run marked rows.
  EXPECT_EQ(
      decide(4, JobState{S::Approved, std::nullopt}, A::Cancel, erase_context(true)).finalization,
      F::AwaitingWindow);
  // Exports and purges never have a finalization.
  ActionContext purge;
  purge.kind = JobKind::Purge;
  purge.reached_processing = true;
  EXPECT_EQ(decide(4, JobState{S::Processing, std::nullopt}, A::Complete, purge).finalization,
            std::nullopt);
  // Nor does a restriction: its rows stay marked until lifted, never finalized.
  ActionContext restriction;
  restriction.kind = JobKind::Restrict;
  restriction.reached_processing = true;
  EXPECT_EQ(decide(4, JobState{S::Processing, std::nullopt}, A::Complete, restriction).finalization,
            std::nullopt);
}

TEST(JobState, RetryWhileAwaitingTheWindowResumesTheErase) {
  JobState stopped{S::Failed, F::AwaitingWindow};
  EXPECT_EQ(decide(5, stopped, A::Retry, erase_context(true)),
            (JobState{S::Approved, std::nullopt}));
  for (F begun : {F::Finalizing, F::Held, F::Finalized, F::FinalizedWithErrors}) {
    for (S status : {S::Failed, S::Cancelled}) {
      Error error("", "");
      try {
        decide(5, JobState{status, begun}, A::Retry, erase_context(true));
      } catch (const Error& e) {
        error = e;
      }
      EXPECT_EQ(error.sqlstate(), "55000") << to_string(begun);
      EXPECT_NE(std::string(error.what()).find("its finalization has begun"), std::string::npos);
      EXPECT_NE(error.hint().find("new request"), std::string::npos);
    }
  }
}

TEST(JobState, TheWindowClosesOnlyWhenItHasClosed) {
  JobState waiting{S::Completed, F::AwaitingWindow};
  Error error("", "");
  try {
    decide(6, waiting, A::CloseWindow, erase_context(true, false));
  } catch (const Error& e) {
    error = e;
  }
  EXPECT_EQ(error.sqlstate(), "55000");
  EXPECT_EQ(std::string(error.what()), "the recovery window of job 6 has not closed yet");
  EXPECT_EQ(decide(6, waiting, A::CloseWindow, erase_context(true, true)).finalization,
            F::Finalizing);
}

TEST(JobState, FinalizationNeedsAStoppedJob) {
  for (S status : {S::Pending, S::Approved, S::Processing, S::Rejected}) {
    Error error("", "");
    try {
      decide(7, JobState{status, F::AwaitingWindow}, A::CloseWindow, erase_context(true));
    } catch (const Error& e) {
      error = e;
    }
    EXPECT_EQ(error.sqlstate(), "55000") << name(status);
  }
  Error none("", "");
  try {
    decide(7, JobState{S::Completed, std::nullopt}, A::CloseWindow, erase_context(true));
  } catch (const Error& e) {
    none = e;
  }
  EXPECT_EQ(std::string(none.what()),
            "the finalization of job 7 is not begun and cannot be started");
}

TEST(JobState, StatusActionsKeepTheFinalization) {
  // A finalization action never changes the status, and a status action on a job whose
  // finalization has begun cannot reach it (retry is refused above; the others do not apply).
  for (A action : kFinalizationActions) EXPECT_FALSE(action_allowed_from(action, S::Completed));
  JobState held{S::Cancelled, F::Held};
  EXPECT_EQ(decide(8, held, A::ResumeFinalization, erase_context(true)).status, S::Cancelled);
}
