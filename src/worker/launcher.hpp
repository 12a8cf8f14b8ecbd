// The launcher background worker (docs/jobs.md, "How a job runs"): one per server, connected to
// privacy.database, woken by its latch or every privacy.naptime. Its cycle is the step table
// kCycle in worker/launcher.cpp.
#pragma once

namespace privacy::launcher {

// Registers the static launcher worker. Called from _PG_init while preloading.
void register_launcher();

// Asks for the next cycle within `seconds` at the latest, when a step knows that work is due
// sooner than privacy.naptime (a job to resume once its pause is over). The earliest request of a
// cycle wins; the launcher then sleeps min(naptime, that).
void wake_within(double seconds);

}  // namespace privacy::launcher
