DELETE FROM registry_version WHERE id = 2;
