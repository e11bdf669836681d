-- MISO's hubs and load zones for the hub_prices / zone_prices views (sql/050_read_views.sql): the
-- market reports' `Type` column, kept as location_type by the MISO normalizer ('Hub' such as
-- INDIANA.HUB, 'Loadzone'; tests/samples/miso carries both).
INSERT INTO lmp_location_classes (iso, location_type, location_class) VALUES
    ('MISO', 'Hub', 'hub'), ('MISO', 'Loadzone', 'zone')
ON CONFLICT DO NOTHING;
