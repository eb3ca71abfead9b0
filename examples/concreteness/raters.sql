-- How close each rater comes to each human dataset on the words both rated
-- (Spearman rho from average ranks), next to the human datasets' own agreement.
WITH pairs AS (
  SELECT a.dimension, a.rater AS rater, b.rater AS gold, a.item, a.value AS x, b.value AS y
  FROM ratings a
  JOIN ratings b ON a.item = b.item AND a.language = b.language AND a.dimension = b.dimension
  WHERE b.rater_kind = 'norm' AND a.rater <> b.rater AND a.value IS NOT NULL
    AND a.item IN (SELECT item FROM ratings WHERE rater_kind IN ('llm', 'model'))
),
ranked AS (
  SELECT dimension, rater, gold,
    rank() OVER (PARTITION BY dimension, rater, gold ORDER BY x)
      + (count(*) OVER (PARTITION BY dimension, rater, gold, x) - 1) / 2.0 AS rx,
    rank() OVER (PARTITION BY dimension, rater, gold ORDER BY y)
      + (count(*) OVER (PARTITION BY dimension, rater, gold, y) - 1) / 2.0 AS ry
  FROM pairs
)
SELECT dimension, rater, gold, count(*) AS words, round(corr(rx, ry), 3) AS spearman_rho
FROM ranked
GROUP BY ALL
ORDER BY dimension, gold, spearman_rho DESC
