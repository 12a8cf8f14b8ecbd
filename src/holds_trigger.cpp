// The enforcement triggers of legal holds (DESIGN section 7), attached to a registered table by
// holds::sync_triggers while an active hold could cover its rows (holds_sync.cpp):
//   privacy._hold_guard(subject_column, tenant_column)           BEFORE UPDATE OR DELETE, per row
//   privacy._hold_guard_truncate(subject_column, tenant_column)  BEFORE TRUNCATE, per statement
// and the statement trigger on privacy.legal_holds that announces changes (privacy._holds_changed).
//
// Cost: a table without covering holds has no trigger at all. The trigger may still run with no
// active hold (a release that could not lock the table yet, an expired hold not yet processed):
// then known_to_have_no_holds() is one atomic read (preloaded) and the row goes through.
#include "holds.hpp"
#include "holds_cache.hpp"
#include "holds_shared.hpp"
#include "pg/boundary.hpp"
#include "pg/security_context.hpp"
#include "pg/spi.hpp"

extern "C" {
#include "access/htup_details.h"
#include "catalog/pg_type.h"
#include "commands/trigger.h"
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
                std::string(function) + " must be called as a trigger",
                {}, "It is attached by privacy.register_table; do not call it directly.");
  }
  auto* data = reinterpret_cast<TriggerData*>(fcinfo->context);
  if (data->tg_trigger->tgnargs != 2) {
    throw Error(sqlstate::kInvalidParameter,
                std::string(function) + " needs two trigger arguments (subject column, tenant column or '')");
  }
  return data;
}

// Resolves the columns named in the trigger arguments. A missing column is an error: the guard
// fails closed rather than letting held rows go.
GuardColumns* guard_columns(FunctionCallInfo fcinfo, TriggerData* data) {
  if (fcinfo->flinfo->fn_extra != nullptr) return static_cast<GuardColumns*>(fcinfo->flinfo->fn_extra);
  TupleDesc desc = RelationGetDescr(data->tg_relation);
  const char* subject = data->tg_trigger->tgargs[0];
  const char* tenant = data->tg_trigger->tgargs[1];
  GuardColumns columns{};
  columns.subject_attnum = pg::pg_guard([&] { return SPI_fnumber(desc, subject); });
  columns.tenant_attnum = tenant[0] == '\0' ? 0 : pg::pg_guard([&] { return SPI_fnumber(desc, tenant); });
  if (columns.subject_attnum <= 0 || columns.tenant_attnum < 0) {
    throw Error(sqlstate::kUndefinedColumn,
                "legal hold trigger on table " + std::string(RelationGetRelationName(data->tg_relation)) +
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
    auto* kept = static_cast<GuardColumns*>(MemoryContextAlloc(fcinfo->flinfo->fn_mcxt, sizeof(GuardColumns)));
    *kept = columns;
    fcinfo->flinfo->fn_extra = kept;
  });
  return static_cast<GuardColumns*>(fcinfo->flinfo->fn_extra);
}

// A column's value as text; NULL becomes "" (no hold has a blank id, so it matches none).
// text and varchar values are copied straight from the datum (detoasted if needed): this runs for
// every row while holds are active, and ids are short enough not to allocate.
std::string column_text(HeapTuple tuple, TupleDesc desc, int attnum, Oid output, bool is_text) {
  struct Bytes {
    const char* data;
    int length;  // -1: NULL
  };
  Bytes bytes = pg::pg_guard([&]() -> Bytes {
    bool isnull = false;
    Datum value = heap_getattr(tuple, attnum, desc, &isnull);
    if (isnull) return Bytes{nullptr, -1};
    if (is_text) {
      text* t = DatumGetTextPP(value);
      return Bytes{VARDATA_ANY(t), static_cast<int>(VARSIZE_ANY_EXHDR(t))};
    }
    char* out = OidOutputFunctionCall(output, value);
    return Bytes{out, static_cast<int>(std::strlen(out))};
  });
  return bytes.length < 0 ? std::string() : std::string(bytes.data, static_cast<size_t>(bytes.length));
}

// An UPDATE that only clears privacy_erased_by (privacy.restore bringing rows back) keeps held
// data intact, so holds allow it: held soft-deleted rows stay restorable (DESIGN section 7).
bool is_restore(TriggerData* data, const GuardColumns& columns) {
  if (columns.erased_attnum == 0) return false;
  return pg::pg_guard([&] {
    TupleDesc desc = RelationGetDescr(data->tg_relation);
    bool old_null = false, new_null = false;
    heap_getattr(data->tg_trigtuple, columns.erased_attnum, desc, &old_null);
    heap_getattr(data->tg_newtuple, columns.erased_attnum, desc, &new_null);
    if (old_null || !new_null) return false;
    for (int attnum = 1; attnum <= desc->natts; ++attnum) {
      Form_pg_attribute attribute = TupleDescAttr(desc, attnum - 1);
      if (attribute->attisdropped || attnum == columns.erased_attnum) continue;
      Datum old_value = heap_getattr(data->tg_trigtuple, attnum, desc, &old_null);
      Datum new_value = heap_getattr(data->tg_newtuple, attnum, desc, &new_null);
      if (old_null != new_null) return false;
      if (!old_null && !datumIsEqual(old_value, new_value, attribute->attbyval, attribute->attlen)) return false;
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
                         const std::optional<std::string>& tenant, Oid relation, const HoldInfo& hold) {
  privacy::holds::report_blocked(operation, tenant, relation, hold);
  privacy::holds::raise_hold_error(what, hold);
}

std::string json_string(const std::string& text) {
  std::string out = "\"";
  for (char c : text) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (static_cast<unsigned char>(c) < 0x20) {
      char escaped[8];
      std::snprintf(escaped, sizeof(escaped), "\\u%04x", c);
      out += escaped;
    } else {
      out += c;
    }
  }
  return out + "\"";
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

}  // namespace

// BEFORE UPDATE OR DELETE FOR EACH ROW. Refuses the change of a row covered by an active hold
// (for UPDATE: a hold with block_updates), after queueing its hold_blocked audit row.
PRIVACY_SQL_FUNCTION(privacy_hold_guard) {
  TriggerData* data = trigger_data(fcinfo, "privacy._hold_guard()");
  TriggerEvent event = data->tg_event;
  if (!TRIGGER_FIRED_BEFORE(event) || !TRIGGER_FIRED_FOR_ROW(event) ||
      !(TRIGGER_FIRED_BY_UPDATE(event) || TRIGGER_FIRED_BY_DELETE(event))) {
    throw Error(sqlstate::kObjectNotInPrerequisiteState,
                "privacy._hold_guard() must be a BEFORE UPDATE OR DELETE row trigger");
  }
  bool is_update = TRIGGER_FIRED_BY_UPDATE(event);
  HeapTuple pass = is_update ? data->tg_newtuple : data->tg_trigtuple;
  if (privacy::holds::known_to_have_no_holds()) return PointerGetDatum(pass);

  const GuardColumns& columns = *guard_columns(fcinfo, data);
  TupleDesc desc = RelationGetDescr(data->tg_relation);
  HoldTarget target;
  target.relation = RelationGetRelid(data->tg_relation);
  target.subject_id = column_text(data->tg_trigtuple, desc, columns.subject_attnum, columns.subject_output,
                                  columns.subject_is_text);
  if (columns.tenant_attnum > 0) {
    target.tenant_id = column_text(data->tg_trigtuple, desc, columns.tenant_attnum, columns.tenant_output,
                                   columns.tenant_is_text);
  }
  target.updates_only = is_update;
  std::optional<HoldInfo> hold = privacy::holds::covering_hold(target);
  if (!hold) return PointerGetDatum(pass);
  if (is_update && is_restore(data, columns)) return PointerGetDatum(pass);

  std::string operation = is_update ? "UPDATE" : "DELETE";
  std::string what = operation + " of a row of subject " + *target.subject_id +
                     (target.tenant_id ? " (tenant " + *target.tenant_id + ")" : std::string()) +
                     " in " + table_name(data->tg_relation);
  refuse(operation, what, target.tenant_id ? target.tenant_id : hold->tenant_id, target.relation, *hold);
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
    std::optional<HoldInfo> hold = privacy::holds::covering_hold(HoldTarget{relation, std::nullopt, std::nullopt, false});
    if (hold) refuse("TRUNCATE", what, hold->tenant_id, relation, *hold);
  }
  if (tenants.empty() && holds.held_subjects.empty()) return PointerGetDatum(nullptr);

  // One row of a held tenant or subject, if there is any.
  const std::string is_any = " OPERATOR(pg_catalog.=) ANY ";
  const std::string held_subjects = "(SELECT x OPERATOR(pg_catalog.->>) 0, x OPERATOR(pg_catalog.->>) 1"
                                    "   FROM pg_catalog.jsonb_array_elements($2::pg_catalog.jsonb) x)";
  std::string subject = "t." + pg::quote_ident(subject_column) + "::pg_catalog.text";
  std::string tenant =
      tenant_column.empty() ? "NULL::pg_catalog.text" : "t." + pg::quote_ident(tenant_column) + "::pg_catalog.text";
  std::string condition;
  if (tenant_column.empty()) {
    condition = subject + is_any + "(SELECT x OPERATOR(pg_catalog.->>) 1"
                                   "   FROM pg_catalog.jsonb_array_elements($2::pg_catalog.jsonb) x)";
  } else {
    condition = tenant + is_any + "(SELECT pg_catalog.jsonb_array_elements_text($1::pg_catalog.jsonb)) OR (" +
                tenant + ", " + subject + ")" + is_any + held_subjects;
  }
  std::string sql = "SELECT " + tenant + ", " + subject + " FROM " + table + " AS t WHERE " + condition +
                    " LIMIT 1";
  std::string tenants_json = json_array(tenants, json_string);
  std::string subjects_json = json_array(holds.held_subjects, [](const std::pair<std::string, std::string>& pair) {
    return "[" + json_string(pair.first) + "," + json_string(pair.second) + "]";
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
  if (hold) refuse("TRUNCATE", what, target.tenant_id ? target.tenant_id : hold->tenant_id, relation, *hold);
  return PointerGetDatum(nullptr);
}

// AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON privacy.legal_holds, FOR EACH STATEMENT:
// the holds changed, so the shared generation moves when this transaction commits, and this
// backend re-reads its own (uncommitted) view meanwhile.
PRIVACY_SQL_FUNCTION(privacy_holds_changed) {
  if (!CALLED_AS_TRIGGER(fcinfo)) {
    throw Error(sqlstate::kObjectNotInPrerequisiteState, "privacy._holds_changed() must be called as a trigger");
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
