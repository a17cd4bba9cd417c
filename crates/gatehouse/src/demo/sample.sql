-- Gatehouse demo schema: a small shop with realistic (fake) customer data.
-- Objects are created as the application role the gateway logs in as.
SET ROLE app_owner;

CREATE TABLE customers (
    id          bigserial PRIMARY KEY,
    full_name   text NOT NULL,
    email       text NOT NULL UNIQUE,
    phone       text,
    card_number text,
    ssn         text,
    country     text NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE orders (
    id          bigserial PRIMARY KEY,
    customer_id bigint NOT NULL REFERENCES customers (id),
    total_cents integer NOT NULL CHECK (total_cents >= 0),
    status      text NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now()
);

INSERT INTO customers (full_name, email, phone, card_number, ssn, country, created_at)
SELECT first || ' ' || last,
       lower(first) || '.' || lower(last) || i || '@example.com',
       '+1-555-' || lpad((100 + i)::text, 3, '0') || '-' || lpad((1000 + i * 7)::text, 4, '0'),
       (ARRAY['4111 1111 1111 1111', '5555 5555 5555 4444', '3782 822463 10005',
              '6011 1111 1111 1117', '4012 8888 8888 1881'])[1 + i % 5],
       lpad((100 + i)::text, 3, '0') || '-' || lpad((10 + i % 89)::text, 2, '0') || '-' || lpad((1000 + i * 13)::text, 4, '0'),
       (ARRAY['US', 'DE', 'FR', 'GB', 'NL', 'SE'])[1 + i % 6],
       now() - (i || ' days')::interval
FROM generate_series(1, 60) AS i,
     LATERAL (SELECT (ARRAY['Ada', 'Grace', 'Alan', 'Edsger', 'Barbara', 'Donald', 'Frances', 'Ken', 'Margaret', 'Linus'])[1 + i % 10] AS first,
                     (ARRAY['Lovelace', 'Hopper', 'Turing', 'Dijkstra', 'Liskov', 'Knuth', 'Allen', 'Thompson', 'Hamilton', 'Torvalds'])[1 + (i * 3) % 10] AS last) AS n;

INSERT INTO orders (customer_id, total_cents, status, created_at)
SELECT 1 + (i * 7) % 60,
       500 + (i * 3917) % 25000,
       (ARRAY['paid', 'shipped', 'delivered', 'refunded'])[1 + i % 4],
       now() - ((i % 90) || ' days')::interval
FROM generate_series(1, 400) AS i;

RESET ROLE;
