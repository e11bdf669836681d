-- SPP's trading hubs for the hub_prices / hub_zone_prices views (sql/050_read_views.sql): the SPP
-- normalizer (pmp.isos.spp.normalize._location_type) types the *_HUB settlement locations 'Hub'
-- (SPPNORTH_HUB, SPPSOUTH_HUB). SPP publishes no load-zone type (its load settlement locations are
-- 'Settlement Location' like every other), so SPP has no rows in zone_prices.
INSERT INTO lmp_location_classes (iso, location_type, location_class) VALUES
    ('SPP', 'Hub', 'hub')
ON CONFLICT DO NOTHING;
