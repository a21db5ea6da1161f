-- Media paths relative to a per-deployment media root (issue 23), so the card folder can move
-- (`spotid media relocate`) and two cards of one deployment cannot share a relative path.
-- media_root: absolute path of the folder that media.rel_path is relative to; media.path stays
-- media_root + '/' + rel_path (the file stages open), rewritten together with media_root.
ALTER TABLE deployments ADD COLUMN media_root TEXT;

-- Older catalogs stored rel_path relative to each card, so a row's card folder is its path minus
-- rel_path. A deployment's root becomes the deepest folder holding all its cards' folders (the
-- longest common prefix of the smallest and largest card folder, cut back to a '/'), and its
-- rel_paths are taken relative to that root: one card keeps its rel_paths, two cards get their
-- folder names in front. A deployment with a row whose path does not end in '/' + rel_path (written
-- by something other than ingest) keeps media_root NULL and its rel_paths unchanged.
CREATE TEMP TABLE _m0012_cards AS
SELECT deployment_id AS dep,
       MIN(substr(path, 1, length(path) - length(rel_path))) AS lo,
       MAX(substr(path, 1, length(path) - length(rel_path))) AS hi
FROM media
GROUP BY deployment_id
HAVING SUM(rel_path = '' OR substr(path, length(path) - length(rel_path)) <> '/' || rel_path) = 0;

CREATE TEMP TABLE _m0012_roots AS
WITH RECURSIVE common(dep, n) AS (
    SELECT dep, 0 FROM _m0012_cards
    UNION ALL
    SELECT common.dep, common.n + 1 FROM common JOIN _m0012_cards c ON c.dep = common.dep
    WHERE common.n < length(c.lo) AND substr(c.lo, common.n + 1, 1) = substr(c.hi, common.n + 1, 1)
),
longest(dep, prefix) AS (
    SELECT c.dep, substr(c.lo, 1, MAX(common.n)) FROM common JOIN _m0012_cards c ON c.dep = common.dep
    GROUP BY c.dep
)
-- rtrim(s, replace(s, '/', '')) drops the characters after the last '/'
SELECT dep, rtrim(prefix, replace(prefix, '/', '')) AS prefix FROM longest
WHERE rtrim(prefix, replace(prefix, '/', '')) LIKE '/%';

UPDATE deployments
SET media_root = (SELECT CASE WHEN r.prefix = '/' THEN '/' ELSE substr(r.prefix, 1, length(r.prefix) - 1) END
                  FROM _m0012_roots r WHERE r.dep = deployments.id)
WHERE id IN (SELECT dep FROM _m0012_roots);

UPDATE media
SET rel_path = substr(path, (SELECT length(r.prefix) FROM _m0012_roots r WHERE r.dep = media.deployment_id) + 1)
WHERE deployment_id IN (SELECT dep FROM _m0012_roots);

DROP TABLE _m0012_cards;

DROP TABLE _m0012_roots;
