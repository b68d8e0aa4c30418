import { defineQuery } from '@causeway/core';
import type { ProductAdded, ProductUpdated } from '../contracts/catalog-events.js';
import { amount, dataOf, missingRow, quotedSchema, type ShopReadModel } from './read-model.js';

export interface ProductHit {
  readonly sku: string;
  readonly name: string;
  readonly category: string;
  readonly description: string;
  readonly price: number;
  /** ts_rank of the match; higher ranks first. */
  readonly rank: number;
}

/** `text` is web-search syntax: words are ANDed, "quoted phrases", `or`, and `-word` to exclude. */
export const productSearchQuery = defineQuery<{ tenantId: string; text: string; limit: number }, { hits: readonly ProductHit[] }>('shop.product-search');

interface HitRow {
  sku: string;
  name: string;
  category: string;
  description: string;
  price: string;
  rank: number;
}

const VERSION = 1;

/**
 * Product search on PostgreSQL full-text search. The document is a generated tsvector column
 * (name weighted A, category B, description C) with a GIN index; queries go through
 * websearch_to_tsquery, which never fails on user input, and rank with ts_rank, so a word in a
 * product's name outranks the same word in another product's description.
 */
export function productSearchReadModel(schema = 'shop'): ShopReadModel {
  const table = `${quotedSchema(schema)}.product_search_v${VERSION}`;

  return {
    projection: {
      name: 'shop.product-search',
      version: VERSION,
      handlers: {
        async 'catalog.product.added'(event, tx) {
          const p = dataOf<ProductAdded>(event);
          await tx.query(
            `INSERT INTO ${table} (tenant_id, sku, name, description, category, price, added_at, updated_at, version)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $7, $8)`,
            [event.tenantId, p.sku, p.name, p.description, p.category, p.price, event.occurredAt, event.streamVersion],
          );
        },
        async 'catalog.product.updated'(event, tx) {
          const { sku, changes } = dataOf<ProductUpdated>(event);
          // A field absent from the event is unchanged: bind null and keep the column.
          const r = await tx.query(
            `UPDATE ${table} SET name = coalesce($3, name), description = coalesce($4, description),
                    category = coalesce($5, category), price = coalesce($6::numeric, price), updated_at = $7, version = $8
              WHERE tenant_id = $1 AND sku = $2`,
            [event.tenantId, sku, changes.name ?? null, changes.description ?? null, changes.category ?? null, changes.price ?? null, event.occurredAt, event.streamVersion],
          );
          if (r.rowCount !== 1) throw missingRow('product search', `product ${sku}`, event);
        },
      },
    },

    ddl: [
      `CREATE TABLE IF NOT EXISTS ${table} (
        tenant_id text NOT NULL,
        sku text NOT NULL,
        name text NOT NULL,
        description text NOT NULL,
        category text NOT NULL,
        price numeric NOT NULL,
        added_at timestamptz NOT NULL,
        updated_at timestamptz NOT NULL,
        version integer NOT NULL,
        search tsvector GENERATED ALWAYS AS (
          setweight(to_tsvector('english'::regconfig, name), 'A') ||
          setweight(to_tsvector('english'::regconfig, category), 'B') ||
          setweight(to_tsvector('english'::regconfig, description), 'C')
        ) STORED,
        PRIMARY KEY (tenant_id, sku)
      )`,
      `CREATE INDEX IF NOT EXISTS product_search_v${VERSION}_document ON ${table} USING gin (search)`,
    ],

    registerQueries(bus, db, waitFor) {
      bus.register(
        productSearchQuery,
        async ({ tenantId, text, limit }) => {
          const { rows } = await db.query<HitRow>(
            `SELECT sku, name, category, description, price::text AS price, round(ts_rank(search, q)::numeric, 6)::float8 AS rank
               FROM ${table}, websearch_to_tsquery('english'::regconfig, $2) AS q
              WHERE tenant_id = $1 AND search @@ q
              ORDER BY rank DESC, sku
              LIMIT $3`,
            [tenantId, text, limit],
          );
          return { hits: rows.map((r) => ({ sku: r.sku, name: r.name, category: r.category, description: r.description, price: amount(r.price), rank: r.rank })) };
        },
        { waitFor },
      );
    },
  };
}
