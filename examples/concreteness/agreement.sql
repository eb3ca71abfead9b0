-- Spearman rho between every two norm datasets on the words both rated:
-- Pearson correlation of average ranks (ties get the mean of their ranks).
WITH pairs AS (
  SELECT a.dimension, a.rater AS rater_a, b.rater AS rater_b, a.item, a.value AS x, b.value AS y
  FROM ratings a
  JOIN ratings b ON a.item = b.item AND a.language = b.language AND a.dimension = b.dimension
  WHERE a.rater < b.rater AND a.rater_kind = 'norm' AND b.rater_kind = 'norm'
),
ranked AS (
  SELECT dimension, rater_a, rater_b,
    rank() OVER (PARTITION BY dimension, rater_a, rater_b ORDER BY x)
      + (count(*) OVER (PARTITION BY dimension, rater_a, rater_b, x) - 1) / 2.0 AS rx,
    rank() OVER (PARTITION BY dimension, rater_a, rater_b ORDER BY y)
      + (count(*) OVER (PARTITION BY dimension, rater_a, rater_b, y) - 1) / 2.0 AS ry
  FROM pairs
)
SELECT dimension, rater_a, rater_b, count(*) AS shared_words, round(corr(rx, ry), 3) AS spearman_rho
FROM ranked
GROUP BY ALL
ORDER BY dimension, rater_a, rater_b
