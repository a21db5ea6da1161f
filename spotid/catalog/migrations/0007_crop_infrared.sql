-- Whether a crop is an infrared (grey) night frame, decided once by the feature extractor: the
-- verifier discounts the chance agreement of two night crops (ir_chance_inliers). NULL on crops cut
-- before this column existed: identify recomputes them; gallery crops of earlier runs count as colour.
ALTER TABLE crops ADD COLUMN infrared INTEGER;
