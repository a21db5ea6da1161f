-- A colour crop's second RootSIFT set, computed after a horizontal motion blur like a night exposure's;
-- the verifier matches it against infrared crops. NULL for infrared crops, for crops featured before this
-- column existed (identify recomputes them: the features version changed) and with motion_blur = 0.
ALTER TABLE crops ADD COLUMN motion_keypoints BLOB;
ALTER TABLE crops ADD COLUMN motion_descriptors BLOB;
