-- Discovery (docs/soft-delete.md, "Finding the tables to register"): follows the foreign keys
-- that lead to subject_table (tables that reference it, the tables that reference those, ...)
-- and returns a script of register_table / set_column_rule calls to review and run. It
-- registers nothing. SECURITY INVOKER: it reads only the catalogs, as the caller.
--   psql -Atc "SELECT * FROM privacy.suggest_registrations('app.users', 'tenant_id')" > register.sql
CREATE FUNCTION privacy.suggest_registrations(subject_table regclass, tenant_column name DEFAULT NULL)
RETURNS SETOF text
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp
AS $fn$
DECLARE
    subject_key  name[];
    queue        oid[];
    subject_of   jsonb := '{}';   -- relation oid -> its subject column
    rel          oid;
    child        record;
    col          name;
    pos          integer;
    on_erase     text;
    texty        boolean;
    tenant_col   name;
    colrec       record;
    kind         text;
    rule         text;
BEGIN
    IF subject_table IS NULL THEN
        RAISE EXCEPTION 'subject_table must not be NULL'
            USING ERRCODE = '22023', HINT = 'Pass the table with one row per data subject, e.g. ''app.users''.';
    END IF;
    IF (SELECT c.relkind FROM pg_class c WHERE c.oid = subject_table) NOT IN ('r', 'p') THEN
        RAISE EXCEPTION '% is not a table', subject_table
            USING ERRCODE = '42809', HINT = 'Pass the table that stores one row per data subject.';
    END IF;
    IF tenant_column IS NOT NULL AND NOT EXISTS (
           SELECT FROM pg_attribute a WHERE a.attrelid = subject_table AND a.attname = tenant_column
              AND a.attnum > 0 AND NOT a.attisdropped) THEN
        RAISE EXCEPTION 'column "%" of relation % does not exist', tenant_column, subject_table
            USING ERRCODE = '42703', HINT = 'Pass the tenant column of the subject table, or NULL for a single-tenant schema.';
    END IF;
    -- The subject column: the one column of the primary key besides the tenant column.
    SELECT array_agg(a.attname ORDER BY k.n) INTO subject_key
      FROM pg_constraint c
     CROSS JOIN LATERAL unnest(c.conkey) WITH ORDINALITY AS k(attnum, n)
      JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = k.attnum
     WHERE c.conrelid = subject_table AND c.contype = 'p'
       AND a.attname IS DISTINCT FROM tenant_column;
    IF coalesce(cardinality(subject_key), 0) <> 1 THEN
        RAISE EXCEPTION 'cannot tell the subject column of %: its primary key has % columns besides the tenant column',
                subject_table, coalesce(cardinality(subject_key), 0)
            USING ERRCODE = '55000',
                  HINT = 'Give the table a primary key of (tenant column, subject id), or register it by hand with privacy.register_table.';
    END IF;

    RETURN NEXT format('-- Suggested by privacy.suggest_registrations(%L, %L): review, then run.',
                       subject_table::text, tenant_column);
    -- Breadth first along the foreign keys pointing at each table reached.
    queue := ARRAY[subject_table::oid];
    subject_of := jsonb_build_object(subject_table::oid::text, subject_key[1]);
    pos := 1;
    WHILE pos <= cardinality(queue) LOOP
        rel := queue[pos];
        pos := pos + 1;
        FOR child IN
            SELECT DISTINCT ON (c.conrelid) c.conrelid, c.conkey, c.confkey
              FROM pg_constraint c
              JOIN pg_class r ON r.oid = c.conrelid
              JOIN pg_namespace n ON n.oid = r.relnamespace
             WHERE c.contype = 'f' AND c.confrelid = rel AND c.conrelid <> ALL (queue)
               AND r.relispartition IS NOT TRUE
               AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg\_%'
               AND NOT EXISTS (SELECT FROM pg_depend d WHERE d.classid = 'pg_class'::regclass
                                  AND d.objid = r.oid AND d.deptype = 'e')
             ORDER BY c.conrelid, c.oid
        LOOP
            -- The child's column that the key points from onto the parent's subject column, else
            -- a column of the same name (a line table that carries the buyer, say).
            SELECT a.attname INTO col
              FROM unnest(child.conkey, child.confkey) AS k(from_att, to_att)
              JOIN pg_attribute p ON p.attrelid = rel AND p.attnum = k.to_att
              JOIN pg_attribute a ON a.attrelid = child.conrelid AND a.attnum = k.from_att
             WHERE p.attname = subject_of ->> rel::text;
            IF col IS NULL THEN
                SELECT a.attname INTO col FROM pg_attribute a
                 WHERE a.attrelid = child.conrelid AND a.attname = subject_of ->> rel::text
                   AND a.attnum > 0 AND NOT a.attisdropped;
            END IF;
            queue := queue || child.conrelid;
            subject_of := subject_of || jsonb_build_object(child.conrelid::text, col);
        END LOOP;
    END LOOP;

    FOREACH rel IN ARRAY queue LOOP
        col := subject_of ->> rel::text;
        IF col IS NULL THEN
            RETURN NEXT format('-- %s references the subject table but has no column for the subject id: '
                               || 'add one (e.g. %I) to register it, or leave it to cascades.',
                               rel::regclass, subject_of ->> subject_table::oid::text);
            CONTINUE;
        END IF;
        SELECT a.attname INTO tenant_col FROM pg_attribute a
         WHERE a.attrelid = rel AND a.attname = tenant_column AND a.attnum > 0 AND NOT a.attisdropped;
        -- 'anonymize' keeps a row the subject is only part of (an order, a comment) when its
        -- subject column can hold the 64-character pseudonym; else the row is deleted.
        SELECT a.atttypid IN ('text'::regtype, 'varchar'::regtype) AND (a.atttypmod < 0 OR a.atttypmod - 4 >= 64)
          INTO texty FROM pg_attribute a WHERE a.attrelid = rel AND a.attname = col;
        on_erase := CASE WHEN rel <> subject_table::oid AND texty THEN 'anonymize' ELSE 'delete' END;
        IF NOT pg_has_role((SELECT c.relowner FROM pg_class c WHERE c.oid = rel), 'USAGE') THEN
            RETURN NEXT format('-- %s belongs to %I: a member of that role must run the next line.',
                               rel::regclass, (SELECT c.relowner::regrole::text FROM pg_class c WHERE c.oid = rel));
        END IF;
        RETURN NEXT format('SELECT privacy.register_table(%L, %L, %L, %L);', rel::regclass::text, col, tenant_col, on_erase);
        -- Columns that usually hold personal data, by name and type.
        FOR colrec IN
            SELECT t.attname, t.attnotnull, t.atttypid, t.atttypmod
              FROM pg_attribute t
             WHERE t.attrelid = rel AND t.attnum > 0 AND NOT t.attisdropped
               AND t.attname NOT IN (col, coalesce(tenant_col, ''), 'privacy_erased_by')
               AND NOT EXISTS (SELECT FROM pg_constraint k WHERE k.conrelid = rel AND k.contype = 'p'
                                  AND t.attnum = ANY (k.conkey))
             ORDER BY t.attnum
        LOOP
            kind := CASE
                WHEN colrec.attname ~* 'e[-_ ]?mail' THEN 'e-mail address'
                WHEN colrec.attname ~* '(phone|mobile|msisdn|fax)' THEN 'phone number'
                WHEN colrec.attname ~* '(birth|(^|_)dob($|_))' THEN 'birth date'
                WHEN colrec.atttypid IN ('inet'::regtype, 'cidr'::regtype) OR colrec.attname ~* '((^|_)ip($|_)|ip_?addr)' THEN 'IP address'
                WHEN colrec.attname ~* '(address|street|city|zip|postal|postcode)' THEN 'address'
                WHEN colrec.attname ~* '((^|_)(first|last|full|given|family|middle|display|user|sur)_?name($|_)|^name$|surname)' THEN 'name'
            END;
            CONTINUE WHEN kind IS NULL;
            texty := colrec.atttypid IN ('text'::regtype, 'varchar'::regtype) AND (colrec.atttypmod < 0 OR colrec.atttypmod - 4 >= 64);
            rule := CASE
                WHEN kind = 'e-mail address' AND texty THEN 'hash'   -- stays unique, no longer readable
                WHEN NOT colrec.attnotnull THEN 'null'
                WHEN colrec.atttypid IN ('text'::regtype, 'varchar'::regtype, 'bpchar'::regtype, 'date'::regtype) THEN 'redact'
                WHEN texty THEN 'hash'
            END;
            IF rule IS NULL THEN
                RETURN NEXT format('-- %s.%I holds personal data (%s, type %s): choose its rule by hand.',
                                   rel::regclass, colrec.attname, kind, format_type(colrec.atttypid, colrec.atttypmod));
            ELSIF on_erase = 'anonymize' THEN
                RETURN NEXT format('SELECT privacy.set_column_rule(%L, %L, %L);  -- %s',
                                   rel::regclass::text, colrec.attname, rule, kind);
            ELSE
                RETURN NEXT format('-- %s.%I holds personal data (%s): deleted with the row (with on_erase ''anonymize'': '
                                   || 'SELECT privacy.set_column_rule(%L, %L, %L);)',
                                   rel::regclass, colrec.attname, kind, rel::regclass::text, colrec.attname, rule);
            END IF;
        END LOOP;
    END LOOP;
END
$fn$;

REVOKE ALL ON FUNCTION privacy.suggest_registrations(regclass, name) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION privacy.suggest_registrations(regclass, name) TO privacy_admin;
