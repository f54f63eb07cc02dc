-- Object and upload keys are bytea so that their order is byte order whatever
-- the database's encoding and collation, and so that the smallest key above k
-- is simply k || '\x00'. Names that are never compared by range (buckets,
-- ids, tokens) are text with the C collation.

-- nfyio_successor returns the smallest byte string greater than every byte
-- string that starts with p, or NULL when there is none (p is all 0xff).
-- Listing uses it to jump over a whole common prefix in one index probe.
CREATE FUNCTION nfyio_successor(p bytea) RETURNS bytea
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$
    SELECT CASE WHEN length(t) = 0 THEN NULL
                ELSE set_byte(t, length(t) - 1, get_byte(t, length(t) - 1) + 1) END
    FROM (SELECT rtrim(p, '\xff'::bytea) AS t) s
$$;

CREATE TABLE buckets (
    name    text COLLATE "C" PRIMARY KEY,
    created timestamptz NOT NULL,
    cors    bytea
);

CREATE TABLE objects (
    bucket              text COLLATE "C" NOT NULL REFERENCES buckets (name),
    key                 bytea NOT NULL,
    size                bigint NOT NULL,
    etag                text NOT NULL,
    last_modified       timestamptz NOT NULL,
    content_type        text NOT NULL,
    content_encoding    text NOT NULL,
    content_disposition text NOT NULL,
    content_language    text NOT NULL,
    cache_control       text NOT NULL,
    expires             text NOT NULL,
    user_meta           jsonb,  -- {"name": "value"}
    checksum            jsonb,  -- storage.Checksum
    parts               jsonb,  -- [storage.PartInfo]
    segments            jsonb,  -- [storage.Segment]
    inline              bytea,
    PRIMARY KEY (bucket, key)
);

CREATE TABLE uploads (
    bucket    text COLLATE "C" NOT NULL REFERENCES buckets (name),
    upload_id text COLLATE "C" NOT NULL,
    key       bytea NOT NULL,
    initiated timestamptz NOT NULL,
    template  jsonb NOT NULL,   -- storage.Object
    PRIMARY KEY (bucket, upload_id)
);
-- ListUploads order: key, then initiation, then id.
CREATE INDEX uploads_listing ON uploads (bucket, key, initiated, upload_id);

CREATE TABLE parts (
    bucket        text COLLATE "C" NOT NULL,
    upload_id     text COLLATE "C" NOT NULL,
    number        integer NOT NULL,
    size          bigint NOT NULL,
    etag          text NOT NULL,
    last_modified timestamptz NOT NULL,
    checksum      jsonb,
    blob          text NOT NULL,
    blob_size     bigint NOT NULL,
    PRIMARY KEY (bucket, upload_id, number),
    FOREIGN KEY (bucket, upload_id) REFERENCES uploads (bucket, upload_id)
);

CREATE TABLE access_keys (
    id              text COLLATE "C" PRIMARY KEY,
    name            text NOT NULL,
    sealed_secret   bytea,
    scopes          text[],
    buckets         text[],
    prefix          text NOT NULL,
    disabled        boolean NOT NULL,
    created         timestamptz NOT NULL,
    expires         timestamptz,        -- NULL: never
    max_url_ttl     bigint NOT NULL,    -- nanoseconds, 0: no limit
    max_object_size bigint NOT NULL,
    content_types   text[],
    root            boolean NOT NULL
);

CREATE TABLE redemptions (
    token   text COLLATE "C" PRIMARY KEY,
    expires timestamptz NOT NULL
);
CREATE INDEX redemptions_expires ON redemptions (expires);
