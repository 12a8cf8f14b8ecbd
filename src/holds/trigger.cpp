// The enforcement triggers of legal holds (docs/legal-holds.md), attached to a registered table by
// holds::sync_triggers while an active hold could cover its rows (holds/holds.hpp, kHoldTriggers):
//   privacy._hold_guard(subject_column, tenant_column)           AFTER DELETE / AFTER UPDATE
//                                                                FOR EACH ROW, ENABLE ALWAYS
//   privacy._hold_guard_truncate(subject_column, tenant_column)  BEFORE TRUNCATE, per statement
// and the statement trigger on privacy.legal_holds that announces changes (privacy._holds_changed).
//
// Why AFTER ROW: a BEFORE ROW trigger makes PostgreSQL fetch and lock every old row before calling
// it (GetTupleForTrigger), which roughly doubled a bulk DELETE; statement triggers with transition
// tables (0.1.0) copied every old (and new) row into a tuplestore, spilled to disk past work_mem,
// which cost about as much. An AFTER ROW trigger costs PostgreSQL one queued event per row (the
// row's address) and a fetch of the row when the statement ends; the trigger then looks the row's
// tenant and subject up in the backend's cached holds, in C: no lock, no SQL. A refusal is an
// ERROR raised before the statement ends, so the statement (and its transaction, or
// subtransaction) rolls back and no other transaction ever sees the change.
//
// Cost: a table without covering holds has no trigger at all. The trigger may still run with no
// active hold (a release that could not lock the table yet, an expired hold not yet processed):
// then known_to_have_no_holds() is one atomic read (preloaded) and the row is not read.
#include "holds/holds.hpp"
#include "core/json.hpp"
#include "holds/cache.hpp"
#include "holds/shared.hpp"
#include "pg/boundary.hpp"
#include "pg/security_context.hpp"
#include "pg/spi.hpp"

extern "C" {
#include "access/htup_details.h"
#include "catalog/pg_type.h"
#include "commands/trigger.h"
#include "executor/executor.h"
#include "executor/tuptable.h"
#include "utils/datum.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"
}

#include <cstring>

namespace {

using privacy::core::Error;
using privacy::holds::HoldInfo;
using privacy::holds::HoldTarget;
namespace pg = privacy::pg;
namespace sqlstate = privacy::core::sqlstate;

// The trigger's columns, resolved once per statement and kept in fn_extra (palloc'd, plain).
struct GuardColumns {
  int subject_attnum;
  int tenant_attnum;  // 0: the table has no tenant column
  int erased_attnum;  // 0: no privacy_erased_by column (not yet registered for soft-delete)
  Oid subject_output;
  Oid tenant_output;
  bool subject_is_text;  // text or varchar: read the bytes, no output function call per row
  bool tenant_is_text;
};

bool is_plain_text(Oid type) { return type == TEXTOID || type == VARCHAROID; }

TriggerData* trigger_data(FunctionCallInfo fcinfo, const char* function) {
  if (!CALLED_AS_TRIGGER(fcinfo)) {
    throw Error(sqlstate::kObjectNotInPrerequisiteState,
                std::string(function) + " must be called as a trigger", {},
                "It is attached by privacy.register_table; do not call it directly.");
  }
  auto* data = reinterpret_cast<TriggerData*>(fcinfo->context);
  if (data->tg_trigger->tgnargs != 2) {
    throw Error(sqlstate::kInvalidParameter,
                std::string(function) +
                    " needs two trigger arguments (subject column, tenant column or '')");
  }
  return data;
}

// Resolves the columns named in the trigger arguments. A missing column is an error: the guard
// fails closed rather than letting held rows go.
GuardColumns* guard_columns(FunctionCallInfo fcinfo, TriggerData* data) {
  if (fcinfo->flinfo->fn_extra != nullptr)
    return static_cast<GuardColumns*>(fcinfo->flinfo->fn_extra);
  TupleDesc desc = RelationGetDescr(data->tg_relation);
  const char* subject = data->tg_trigger->tgargs[0];
  const char* tenant = data->tg_trigger->tgargs[1];
  GuardColumns columns{};
  columns.subject_attnum = pg::pg_guard([&] { return SPI_fnumber(desc, subject); });
  columns.tenant_attnum =
      tenant[0] == '\0' ? 0 : pg::pg_guard([&] { return SPI_fnumber(desc, tenant); });
  if (columns.subject_attnum <= 0 || columns.tenant_attnum < 0) {
    throw Error(sqlstate::kUndefinedColumn,
                "legal hold trigger on table " +
                    std::string(RelationGetRelationName(data->tg_relation)) +
                    " names a column that does not exist",
                "subject column \"" + std::string(subject) + "\", tenant column \"" + tenant + "\"",
                "Re-register the table (privacy.register_table) after renaming its columns.");
  }
  int erased = pg::pg_guard([&] { return SPI_fnumber(desc, "privacy_erased_by"); });
  columns.erased_attnum = erased > 0 ? erased : 0;
  pg::pg_guard([&] {
    bool varlena = false;
    Oid subject_type = TupleDescAttr(desc, columns.subject_attnum - 1)->atttypid;
    getTypeOutputInfo(subject_type, &columns.subject_output, &varlena);
    columns.subject_is_text = is_plain_text(subject_type);
    if (columns.tenant_attnum > 0) {
      Oid tenant_type = TupleDescAttr(desc, columns.tenant_attnum - 1)->atttypid;
      getTypeOutputInfo(tenant_type, &columns.tenant_output, &varlena);
      columns.tenant_is_text = is_plain_text(tenant_type);
    }
    auto* kept = static_cast<GuardColumns*>(
        MemoryContextAlloc(fcinfo->flinfo->fn_mcxt, sizeof(GuardColumns)));
    *kept = columns;
    fcinfo->flinfo->fn_extra = kept;
  });
  return static_cast<GuardColumns*>(fcinfo->flinfo->fn_extra);
}

// The bytes of a column's value as text, without copying for text and varchar (detoasted if
// needed); NULL gives length -1. PostgreSQL calls only; what it allocates goes into the current
// (per-row) memory context.
struct ValueBytes {
  const char* data;
  int length;
};

ValueBytes value_bytes(TupleTableSlot* row, int attnum, Oid output, bool is_text) {
  bool isnull = false;
  Datum value = slot_getattr(row, attnum, &isnull);
  if (isnull) return ValueBytes{nullptr, -1};
  if (is_text) {
    text* t = DatumGetTextPP(value);
    return ValueBytes{VARDATA_ANY(t), static_cast<int>(VARSIZE_ANY_EXHDR(t))};
  }
  char* out = OidOutputFunctionCall(output, value);
  return ValueBytes{out, static_cast<int>(std::strlen(out))};
}

// NULL becomes "": no hold has a blank id, so it matches none.
std::string text_of(const ValueBytes& bytes) {
  return bytes.length < 0 ? std::string()
                          : std::string(bytes.data, static_cast<size_t>(bytes.length));
}

// What holds could cover: the row's subject and tenant (none for a table without tenant column).
// This runs for every row while holds are active: one guarded call reads both ids.
HoldTarget row_target(TupleTableSlot* row, const GuardColumns& columns, Oid relation,
                      bool is_update) {
  struct Ids {
    ValueBytes subject;
    ValueBytes tenant;
  };
  Ids ids = pg::pg_guard([&] {
    Ids read{
        value_bytes(row, columns.subject_attnum, columns.subject_output, columns.subject_is_text),
        ValueBytes{nullptr, -1}};
    if (columns.tenant_attnum > 0) {
      read.tenant =
          value_bytes(row, columns.tenant_attnum, columns.tenant_output, columns.tenant_is_text);
    }
    return read;
  });
  HoldTarget target;
  target.relation = relation;
  target.subject_id = text_of(ids.subject);
  if (columns.tenant_attnum > 0) target.tenant_id = text_of(ids.tenant);
  target.updates_only = is_update;
  return target;
}

// An UPDATE that only clears privacy_erased_by (privacy.restore bringing rows back) keeps held
// data intact, so holds allow it: held soft-deleted rows stay restorable (docs/legal-holds.md).
// old_row and new_row are the same row before and after the UPDATE.
bool is_restore(TupleTableSlot* old_row, TupleTableSlot* new_row, const GuardColumns& columns) {
  if (columns.erased_attnum == 0) return false;
  return pg::pg_guard([&] {
    TupleDesc desc = old_row->tts_tupleDescriptor;
    slot_getallattrs(old_row);
    slot_getallattrs(new_row);
    int erased = columns.erased_attnum - 1;
    if (old_row->tts_isnull[erased] || !new_row->tts_isnull[erased]) return false;
    for (int i = 0; i < desc->natts; ++i) {
      Form_pg_attribute attribute = TupleDescAttr(desc, i);
      if (attribute->attisdropped || i == erased) continue;
      if (old_row->tts_isnull[i] != new_row->tts_isnull[i]) return false;
      if (!old_row->tts_isnull[i] && !datumIsEqual(old_row->tts_values[i], new_row->tts_values[i],
                                                   attribute->attbyval, attribute->attlen)) {
        return false;
      }
    }
    return true;
  });
}

std::string table_name(Relation relation) {
  return pg::pg_guard([&] {
    return quote_qualified_identifier(get_namespace_name(RelationGetNamespace(relation)),
                                      RelationGetRelationName(relation));
  });
}

[[noreturn]] void refuse(const std::string& operation, const std::string& what,
                         const std::optional<std::string>& tenant, Oid relation,
                         const HoldInfo& hold) {
  privacy::holds::report_blocked(operation, tenant, relation, hold);
  privacy::holds::raise_hold_error(what, hold);
}

template <typename Items, typename Encode>
std::string json_array(const Items& items, Encode encode) {
  std::string out = "[";
  for (const auto& item : items) {
    if (out.size() > 1) out += ",";
    out += encode(item);
  }
  return out + "]";
}

// Refuses the change of one row covered by an active hold (for UPDATE: a hold with
// block_updates, unless the UPDATE only restored the row), after queueing its hold_blocked audit
// row. new_row is the row after the UPDATE (nullptr for DELETE, or when it is unknown: then an
// UPDATE of a covered row is refused).
void check_row(TupleTableSlot* old_row, TupleTableSlot* new_row, const GuardColumns& columns,
               Relation relation, bool is_update) {
  HoldTarget target = row_target(old_row, columns, RelationGetRelid(relation), is_update);
  std::optional<HoldInfo> hold = privacy::holds::covering_hold(target);
  if (!hold) return;
  if (is_update && new_row != nullptr && is_restore(old_row, new_row, columns)) return;

  std::string operation = is_update ? "UPDATE" : "DELETE";
  std::string what = operation + " of a row of subject " + *target.subject_id +
                     (target.tenant_id ? " (tenant " + *target.tenant_id + ")" : std::string()) +
                     " in " + table_name(relation);
  refuse(operation, what, target.tenant_id ? target.tenant_id : hold->tenant_id, target.relation,
         *hold);
}

}  // namespace

// AFTER DELETE / AFTER UPDATE FOR EACH ROW (privacy_hold_guard_delete, _update). Refuses the
// statement when it deleted or changed a row covered by an active hold (check_row). A statement
// trigger calling it is one attached by 0.1.0 and not yet replaced: refused (fail closed) until
// the launcher's next reconcile step replaces it.
PRIVACY_SQL_FUNCTION(privacy_hold_guard) {
  TriggerData* data = trigger_data(fcinfo, "privacy._hold_guard()");
  TriggerEvent event = data->tg_event;
  bool is_update = TRIGGER_FIRED_BY_UPDATE(event);
  if (!TRIGGER_FIRED_AFTER(event) || !TRIGGER_FIRED_FOR_ROW(event) ||
      !(is_update || TRIGGER_FIRED_BY_DELETE(event))) {
    throw Error(sqlstate::kObjectNotInPrerequisiteState,
                "privacy._hold_guard() on table " + table_name(data->tg_relation) +
                    " must be an AFTER UPDATE or AFTER DELETE trigger FOR EACH ROW",
                {},
                "pg_privacy attaches it itself and replaces triggers of earlier versions within "
                "one launcher cycle; a superuser can replace them now with SELECT "
                "privacy._sync_hold_triggers(). See docs/legal-holds.md, \"The triggers\".");
  }
  if (privacy::holds::known_to_have_no_holds()) return PointerGetDatum(nullptr);

  const GuardColumns& columns = *guard_columns(fcinfo, data);
  check_row(data->tg_trigslot, is_update ? data->tg_newslot : nullptr, columns, data->tg_relation,
            is_update);
  return PointerGetDatum(nullptr);
}

// BEFORE TRUNCATE FOR EACH STATEMENT. Refuses TRUNCATE of a table that holds any held row: a
// table hold on it, or a row of a held tenant or subject. On a table without tenant column a
// tenant hold refuses outright, since its rows cannot be told apart by tenant.
// The look for a held row runs as the table's owner with its row-level security not forced, so
// hidden soft-deleted rows count whatever the truncating role may read, and with search_path
// pinned: nothing of the truncating session (its path, its temporary types) reaches it, and
// whatever code of the table runs, runs with its owner's rights (docs/security.md).
PRIVACY_SQL_FUNCTION(privacy_hold_guard_truncate) {
  TriggerData* data = trigger_data(fcinfo, "privacy._hold_guard_truncate()");
  if (!TRIGGER_FIRED_BY_TRUNCATE(data->tg_event)) {
    throw Error(sqlstate::kObjectNotInPrerequisiteState,
                "privacy._hold_guard_truncate() must be a BEFORE TRUNCATE statement trigger");
  }
  if (privacy::holds::known_to_have_no_holds()) return PointerGetDatum(nullptr);

  Oid relation = RelationGetRelid(data->tg_relation);
  std::string table = table_name(data->tg_relation);
  std::string what = "TRUNCATE of " + table;
  privacy::holds::RelationHolds holds = privacy::holds::holds_for_relation(relation);
  if (holds.whole_table) refuse("TRUNCATE", what, std::nullopt, relation, *holds.whole_table);

  std::string subject_column = data->tg_trigger->tgargs[0];
  std::string tenant_column = data->tg_trigger->tgargs[1];
  std::vector<std::string> tenants = holds.held_tenants;
  tenants.insert(tenants.end(), holds.table_hold_tenants.begin(), holds.table_hold_tenants.end());
  if (tenant_column.empty() && !tenants.empty()) {
    std::optional<HoldInfo> hold =
        privacy::holds::covering_hold(HoldTarget{relation, std::nullopt, std::nullopt, false});
    if (hold) refuse("TRUNCATE", what, hold->tenant_id, relation, *hold);
  }
  if (tenants.empty() && holds.held_subjects.empty()) return PointerGetDatum(nullptr);

  // One row of a held tenant or subject, if there is any.
  const std::string is_any = " OPERATOR(pg_catalog.=) ANY ";
  const std::string held_subjects =
      "(SELECT x OPERATOR(pg_catalog.->>) 0, x OPERATOR(pg_catalog.->>) 1"
      "   FROM pg_catalog.jsonb_array_elements($2::pg_catalog.jsonb) x)";
  std::string subject = "t." + pg::quote_ident(subject_column) + "::pg_catalog.text";
  std::string tenant = tenant_column.empty()
                           ? "NULL::pg_catalog.text"
                           : "t." + pg::quote_ident(tenant_column) + "::pg_catalog.text";
  std::string condition;
  if (tenant_column.empty()) {
    condition = subject + is_any +
                "(SELECT x OPERATOR(pg_catalog.->>) 1"
                "   FROM pg_catalog.jsonb_array_elements($2::pg_catalog.jsonb) x)";
  } else {
    condition = tenant + is_any +
                "(SELECT pg_catalog.jsonb_array_elements_text($1::pg_catalog.jsonb)) OR (" +
                tenant + ", " + subject + ")" + is_any + held_subjects;
  }
  std::string sql = "SELECT " + tenant + ", " + subject + " FROM " + table + " AS t WHERE " +
                    condition + " LIMIT 1";
  std::string tenants_json = json_array(
      tenants, [](const std::string& tenant) { return privacy::core::json_string(tenant); });
  std::string subjects_json =
      json_array(holds.held_subjects, [](const std::pair<std::string, std::string>& pair) {
        return "[" + privacy::core::json_string(pair.first) + "," +
               privacy::core::json_string(pair.second) + "]";
      });
  std::vector<pg::TextRow> rows;
  {
    pg::PinnedSearchPath pinned;
    pg::SpiConnection spi;
    pg::TableOwnerScope owner(relation);
    rows = pg::spi_query_rows(sql, {pg::text_param(tenants_json), pg::text_param(subjects_json)});
  }
  if (rows.empty()) return PointerGetDatum(nullptr);
  HoldTarget target{relation, rows[0][0], rows[0][1].value_or(""), false};
  std::optional<HoldInfo> hold = privacy::holds::covering_hold(target);
  if (hold)
    refuse("TRUNCATE", what, target.tenant_id ? target.tenant_id : hold->tenant_id, relation,
           *hold);
  return PointerGetDatum(nullptr);
}

// AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON privacy.legal_holds, FOR EACH STATEMENT:
// the holds changed, so the shared generation moves when this transaction commits, and this
// backend re-reads its own (uncommitted) view meanwhile.
PRIVACY_SQL_FUNCTION(privacy_holds_changed) {
  if (!CALLED_AS_TRIGGER(fcinfo)) {
    throw Error(sqlstate::kObjectNotInPrerequisiteState,
                "privacy._holds_changed() must be called as a trigger");
  }
  privacy::holds::shared::note_holds_changed();
  privacy::holds::invalidate_cache();
  return PointerGetDatum(nullptr);
}

// privacy._attach_hold_triggers(rel regclass, subject_column name, tenant_column name):
// the SQL face of holds::attach_triggers, for tests and repairs. Superuser only.
PRIVACY_SQL_FUNCTION(privacy_attach_hold_triggers) {
  if (PG_ARGISNULL(0) || PG_ARGISNULL(1)) {
    throw Error(sqlstate::kInvalidParameter, "rel and subject_column must not be NULL");
  }
  Oid relation = PG_GETARG_OID(0);
  std::string subject = NameStr(*PG_GETARG_NAME(1));
  std::string tenant = PG_ARGISNULL(2) ? std::string() : std::string(NameStr(*PG_GETARG_NAME(2)));
  privacy::holds::attach_triggers(relation, tenant, subject);
  PG_RETURN_VOID();
}

// privacy._detach_hold_triggers(rel regclass). Superuser only.
PRIVACY_SQL_FUNCTION(privacy_detach_hold_triggers) {
  if (PG_ARGISNULL(0)) throw Error(sqlstate::kInvalidParameter, "rel must not be NULL");
  privacy::holds::detach_triggers(PG_GETARG_OID(0));
  PG_RETURN_VOID();
}
