-- A small multi-tenant application for the demo (scripts/demo.sh): two tenants, acme and globex,
-- sharing tables that every query filters by tenant through row-level security. The application
-- connects as role demo_app and says which tenant it serves with SET app.tenant = '...'.
CREATE SCHEMA app;

CREATE TABLE app.tenants (
    tenant_id  text PRIMARY KEY,
    name       text NOT NULL
);

CREATE TABLE app.users (
    tenant_id  text NOT NULL REFERENCES app.tenants,
    user_id    bigint NOT NULL,
    email      text NOT NULL,
    full_name  text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, user_id),
    UNIQUE (tenant_id, email)
);

CREATE TABLE app.profiles (
    tenant_id  text NOT NULL,
    user_id    bigint NOT NULL,
    phone      text,
    city       text,
    bio        text,
    PRIMARY KEY (tenant_id, user_id),
    FOREIGN KEY (tenant_id, user_id) REFERENCES app.users
);

CREATE TABLE app.orders (
    tenant_id  text NOT NULL,
    order_id   bigint NOT NULL,
    user_id    bigint NOT NULL,
    placed_at  timestamptz NOT NULL,
    total      numeric(10, 2) NOT NULL,
    PRIMARY KEY (tenant_id, order_id),
    FOREIGN KEY (tenant_id, user_id) REFERENCES app.users
);
CREATE INDEX orders_user_idx ON app.orders (tenant_id, user_id);

CREATE TABLE app.order_items (
    tenant_id  text NOT NULL,
    order_id   bigint NOT NULL,
    item_no    integer NOT NULL,
    user_id    bigint NOT NULL,   -- the buyer, kept on the line for per-subject requests
    product    text NOT NULL,
    quantity   integer NOT NULL CHECK (quantity > 0),
    price      numeric(10, 2) NOT NULL,
    PRIMARY KEY (tenant_id, order_id, item_no),
    FOREIGN KEY (tenant_id, order_id) REFERENCES app.orders
);
CREATE INDEX order_items_user_idx ON app.order_items (tenant_id, user_id);

CREATE TABLE app.comments (
    tenant_id   text NOT NULL,
    comment_id  bigint NOT NULL,
    user_id     bigint NOT NULL,
    body        text NOT NULL,
    posted_at   timestamptz NOT NULL,
    PRIMARY KEY (tenant_id, comment_id),
    FOREIGN KEY (tenant_id, user_id) REFERENCES app.users
);
CREATE INDEX comments_user_idx ON app.comments (tenant_id, user_id);

-- The data: 30 users per tenant, a profile each, 2 orders each with 2 lines, 1 comment each.
INSERT INTO app.tenants VALUES ('acme', 'Acme Corporation'), ('globex', 'Globex Inc.');
INSERT INTO app.users (tenant_id, user_id, email, full_name)
SELECT t, u, format('user%s@%s.example', u, t), format('%s User %s', initcap(t), u)
FROM unnest(ARRAY['acme', 'globex']) AS t, generate_series(1, 30) AS u;
INSERT INTO app.profiles
SELECT tenant_id, user_id, format('+1-555-%s', lpad(user_id::text, 4, '0')),
       (ARRAY['Springfield', 'Shelbyville', 'Ogdenville'])[1 + user_id % 3], 'Likes anvils.'
FROM app.users;
INSERT INTO app.orders
SELECT tenant_id, (user_id - 1) * 2 + n, user_id, now() - (n || ' days')::interval, 10 * n + user_id
FROM app.users, generate_series(1, 2) AS n;
INSERT INTO app.order_items
SELECT o.tenant_id, o.order_id, i, o.user_id, (ARRAY['anvil', 'rocket skates', 'giant magnet'])[i],
       i, 5 * i
FROM app.orders o, generate_series(1, 2) AS i;
INSERT INTO app.comments
SELECT tenant_id, user_id, user_id, format('Comment by user %s: great service', user_id),
       now() - interval '1 hour' * user_id
FROM app.users;

-- Tenant isolation: the application role sees only the rows of the tenant it set.
CREATE ROLE demo_app NOLOGIN;
GRANT USAGE ON SCHEMA app TO demo_app;
GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA app TO demo_app;
DO $$
DECLARE
    t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['users', 'profiles', 'orders', 'order_items', 'comments'] LOOP
        EXECUTE format('ALTER TABLE app.%I ENABLE ROW LEVEL SECURITY', t);
        EXECUTE format('CREATE POLICY tenant_isolation ON app.%I
                          USING (tenant_id = current_setting(''app.tenant'', true))', t);
    END LOOP;
END
$$;
