// Full-text and vector search as Convex documents them, in place of
// convex-test's (any word of the query as a prefix of any word, in table
// order): the query and the field are split into lowercase terms; every term
// but the last must appear exactly and the last may be a prefix of a word
// (https://docs.convex.dev/search/text-search); a document matching any term is
// a result, and results come best first by BM25 relevance. A vector query must
// have the dimensions its index declares.

/** At most this many terms of a search query count, as on the backend. */
const MAX_TERMS = 16;
const BM25_K1 = 1.2;
const BM25_B = 0.75;

/** A search the backend would refuse. */
export class SearchError extends Error {}

/** Lowercase terms of `text`: runs of letters and digits. */
export function terms(text) {
  return text.toLowerCase().match(/[\p{L}\p{N}]+/gu) ?? [];
}

/**
 * Orders `documents` (already filtered by the index's equality filters) by
 * relevance to `query` on `field`, dropping those matching no term.
 */
export function rankBySearch(documents, field, query) {
  const wanted = terms(query).slice(0, MAX_TERMS);
  if (wanted.length === 0) return [];
  const last = wanted.length - 1;
  const matches = (word, index) => (index === last ? word.startsWith(wanted[index]) : word === wanted[index]);
  const fields = documents.map((doc) => {
    const value = field.split(".").reduce((object, key) => object?.[key], doc);
    return typeof value === "string" ? terms(value) : [];
  });
  const averageLength = fields.reduce((sum, words) => sum + words.length, 0) / Math.max(fields.length, 1) || 1;
  const documentFrequency = wanted.map((_, index) => fields.filter((words) => words.some((w) => matches(w, index))).length);
  const scored = [];
  documents.forEach((doc, position) => {
    const words = fields[position];
    let score = 0;
    wanted.forEach((_, index) => {
      const frequency = words.filter((w) => matches(w, index)).length;
      if (frequency === 0) return;
      const idf = Math.log(1 + (documents.length - documentFrequency[index] + 0.5) / (documentFrequency[index] + 0.5));
      score += idf * (frequency * (BM25_K1 + 1)) / (frequency + BM25_K1 * (1 - BM25_B + BM25_B * words.length / averageLength));
    });
    if (score > 0) scored.push({ doc, score, position });
  });
  // Equal scores keep insertion order, like the backend's tie-break on creation.
  scored.sort((a, b) => b.score - a.score || a.position - b.position);
  return scored.map(({ doc }) => doc);
}

/** Throws SearchError unless `vector` has the dimensions of `index` on `table`. */
export function checkVector(schema, table, index, vector) {
  const declared = schema?.tables.get(table)?.vectorIndexes?.find((v) => v.indexDescriptor === index);
  if (declared === undefined || vector.length === declared.dimensions) return;
  // The backend's `vector_dimensions_mismatch_error`, word for word.
  throw new SearchError(`Expected a vector with dimensions ${declared.dimensions}, received ${vector.length}.`);
}
