-- PJM's hubs and transmission zones for the hub_prices / zone_prices views (sql/050_read_views.sql):
-- Data Miner 2's pnode `type` column, kept as location_type by the PJM normalizer ('HUB' such as
-- WESTERN HUB, 'ZONE' such as PSEG or DOM; the samples in tests/samples/pjm carry both).
INSERT INTO lmp_location_classes (iso, location_type, location_class) VALUES
    ('PJM', 'HUB', 'hub'), ('PJM', 'ZONE', 'zone')
ON CONFLICT DO NOTHING;
