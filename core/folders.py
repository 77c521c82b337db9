"""The local folders the settings name, made at Django setup (CoreConfig.ready()) rather than when the
settings are imported: reading the configuration (a linter, a tool, `import config.settings`) leaves
the disk as it was, and every process of the system still finds its folders before it uses them."""

from pathlib import Path

from django.conf import settings


def local_folders() -> list[Path]:
    folders: list[Path] = []
    for database in settings.DATABASES.values():
        if database["ENGINE"] != "django.db.backends.sqlite3":
            continue
        folders.append(Path(settings.DATA_DIR))  # schema_lock's lock file when the database is in memory
        for name in (database.get("NAME"), database.get("TEST", {}).get("NAME")):
            if name and str(name) != ":memory:" and not str(name).startswith("file:"):
                folders.append(Path(name).parent)
    folders.append(Path(settings.STATIC_ROOT))  # WhiteNoise warns at every start without it
    if settings.CELERY_BROKER_URL == "filesystem://":  # kombu's transport expects its folders to exist
        options = settings.CELERY_BROKER_TRANSPORT_OPTIONS
        folders += [Path(options[key]) for key in ("data_folder_in", "data_folder_out", "control_folder")]
        if options.get("store_processed"):
            folders.append(Path(options["processed_folder"]))
    folders.append(Path(settings.CELERY_BEAT_SCHEDULE_FILENAME).parent)  # beat opens its file there
    return list(dict.fromkeys(folders))


def local_folders_create() -> None:
    for folder in local_folders():
        folder.mkdir(parents=True, exist_ok=True)
