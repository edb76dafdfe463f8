from django.apps import apps
from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from rallypoint.lib.crypto import add_key
from rallypoint.tenants.encryption import encrypted_fields, reencrypt_model, rewrap_data_keys, ring


class Command(BaseCommand):
    help = ("Re-encrypt all personal data under the newest key of the key ring (each person's data key is "
            "wrapped under it again; values from before data keys move under their person's key), while the "
            "service runs. "
            "With --add-key, first add a new key to the key file.")

    def add_arguments(self, parser):
        parser.add_argument("--add-key", action="store_true", help="add a new key to the key file first")

    def handle(self, *args, **options):
        if options["add_key"]:
            if settings.ENCRYPTION_KEYS:
                raise CommandError("The keys come from RP_ENCRYPTION_KEYS: append the new key there, restart "
                                   "the service, then run rotate-keys without --add-key.")
            key_id = add_key(settings.KEYRING_FILE)
            self.stdout.write(f"Added key {key_id} to {settings.KEYRING_FILE}.")
        keyring = ring(reload=True)
        self.stdout.write(f"Encrypting under key {keyring.newest_id} (ring: {', '.join(keyring.key_ids)}).")
        total = 0
        for model in apps.get_models():
            if encrypted_fields(model):
                changed = reencrypt_model(model)
                total += changed
                self.stdout.write(f"  {model._meta.label}: {changed} rows re-encrypted")
        wrapped = rewrap_data_keys()
        self.stdout.write(f"  people's data keys: {wrapped} wrapped under {keyring.newest_id}")
        self.stdout.write(f"Done: {total} rows. Running processes pick up a changed key file within seconds; "
                          "run rotate-keys once more after a minute, and when it changes 0 rows, older keys "
                          "can be removed from the ring.")
