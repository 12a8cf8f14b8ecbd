// The DDL guard of registered tables (docs/soft-delete.md, "Registration and the tamper guard").
//
// Event triggers (ENABLE ALWAYS) on ddl_command_start, sql_drop and ddl_command_end run
// privacy._tamper_guard() (data/ddl_guard.cpp). While a table is registered, a command that takes
// away what hides its erased rows or enforces its legal holds is refused; a dropped table loses its
// registration (audited); partitions created, attached or detached later follow their table
// (data/partitions.hpp).
//
// pg_privacy changes these things itself (registration, unregistration, partition upkeep, the
// hold triggers following the holds). It announces that with an OwnDdl object that lives in this
// process's C++ code while its statements run: no SQL, GUC or session setting can create one
// (the same idea as audit::WriteScope).
#pragma once

namespace privacy::ddl_guard {

// While an object lives, the guard lets every command of this backend through (RAII, so an error
// that unwinds the C++ stack always closes the window again). Scopes nest.
class OwnDdl {
 public:
  OwnDdl();
  ~OwnDdl();
  OwnDdl(const OwnDdl&) = delete;
  OwnDdl& operator=(const OwnDdl&) = delete;

 private:
  bool previous_;
};

}  // namespace privacy::ddl_guard
