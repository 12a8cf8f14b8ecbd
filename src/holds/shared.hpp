// The shared-memory side of legal holds (docs/legal-holds.md), used by holds*.cpp only.
//
//  * A generation counter, bumped at the commit of every transaction that changed
//    privacy.legal_holds (a statement trigger on that table notes the change; an xact callback
//    bumps at XACT_EVENT_COMMIT, before the committing transaction releases its locks). Each
//    backend caches the active holds together with the generation it read them at.
//  * The hold_blocked queue: a refused statement rolls back its own transaction, so the trigger
//    puts a fixed-size record here and the launcher writes it to the audit log.
//
// Both exist only when pg_privacy is preloaded; available() says whether they do.
#pragma once

#include "pg/pg_headers.hpp"

namespace privacy::holds::shared {

inline constexpr int kNameBytes = 64;
inline constexpr int kRelationBytes = 160;
inline constexpr int kOperationBytes = 200;

// One refused operation, as the launcher will audit it. Plain characters only: it is copied in
// and out of shared memory.
struct BlockedEvent {
  Oid database;
  TimestampTz at;
  int64 hold_id;
  char session_user[kNameBytes];
  char current_user[kNameBytes];
  char client_addr[kNameBytes];       // "" = none (Unix socket, background process)
  char application_name[kNameBytes];  // "" = none
  char tenant_id[kNameBytes];         // "" = none (platform chain)
  bool has_tenant;
  char relation[kRelationBytes];    // "" = not a table operation
  char operation[kOperationBytes];  // "DELETE", "UPDATE", "TRUNCATE", "erase of ...", ...
};

// The area's part of the shmem request and startup hooks (src/module.cpp).
void request_shared_memory();
void attach_shared_memory();

// True when the library was preloaded and the shared area exists.
bool available();

// The current generation (call only when available()).
uint64 generation();

// Notes that this transaction changed privacy.legal_holds: the generation is bumped when it
// commits. PREPARE TRANSACTION of such a transaction is refused (its commit would not bump).
void note_holds_changed();

// True from note_holds_changed() until the end of the transaction.
bool changed_in_this_transaction();

// Puts an event on the queue; false when there is no shared memory. When the queue is full the
// event is counted as dropped and the count is reported with the next audited event.
bool enqueue_blocked(const BlockedEvent& event);

// Launcher side: copies up to max events from the head of the queue (oldest first) without
// removing them, and the number dropped so far. remove_blocked() then removes what was written.
int peek_blocked(BlockedEvent* out, int max, uint64* dropped);
void remove_blocked(int count, uint64 dropped_reported);

inline constexpr int kQueueCapacity = 64;

// Appends the hold_blocked audit row of one event (holds/holds.cpp), with the identity of the
// session that was refused; `dropped_before` events were lost to a full queue before it.
void audit_blocked_event(const BlockedEvent& event, uint64 dropped_before);

}  // namespace privacy::holds::shared
