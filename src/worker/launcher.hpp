// The launcher background worker (DESIGN section 6): one per server, connected to
// privacy.database, woken by its latch or every privacy.naptime.
#pragma once

namespace privacy::launcher {

// Registers the static launcher worker. Called from _PG_init while preloading.
void register_launcher();

// One step of the launcher's cycle (launch jobs, finalize, expire exports, send mail, ...).
// Each step runs in its own transaction with an SPI connection; an error aborts that step only.
using CycleStep = void (*)();

// Registers a step; steps run in ascending `order`. Features register from a static object:
//   static privacy::launcher::StepRegistration finalize_step(20, "finalize", &finalize_due_jobs);
void register_cycle_step(int order, const char* name, CycleStep step);

// Asks for the next cycle within `seconds` at the latest, when a step knows that work is due
// sooner than privacy.naptime (a job to resume once its pause is over). The earliest request of a
// cycle wins; the launcher then sleeps min(naptime, that).
void wake_within(double seconds);

struct StepRegistration {
  StepRegistration(int order, const char* name, CycleStep step) { register_cycle_step(order, name, step); }
};

}  // namespace privacy::launcher
