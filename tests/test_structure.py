"""The site's structure: buildings, floors with plans and markers, zones with helpers, rooms, assembly
points; who may see and change them; the CSV export and import; the demo's school."""

from __future__ import annotations

import csv
import io
import struct
import zlib

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from PIL import Image

from rallypoint.accounts.models import email_index
from rallypoint.alarms.actions import end_alarm, trigger_alarm
from rallypoint.audit.models import AuditEntry
from rallypoint.evacuation import plans
from rallypoint.evacuation import structure_actions as actions
from rallypoint.evacuation.models import AssemblyPoint, Building, Floor, Marker, Room, Zone, ZoneDuty
from rallypoint.evacuation.structure_csv import export_structure, import_structure
from rallypoint.people.models import Membership
from rallypoint.tenants.demo import DEMO_DOMAIN, seed_demo
from rallypoint.tenants.models import Site
from rallypoint.tenants.roles import Role
from tests.alarm_fixtures import fire_scenario


def image_bytes(fmt: str, size=(800, 500), **save) -> bytes:
    image = Image.new("RGB", size, "white")
    for x in range(0, size[0], 50):
        image.paste((30, 78, 140), (x, 0, x + 5, size[1]))
    out = io.BytesIO()
    image.save(out, fmt, **save)
    return out.getvalue()


def upload(name: str, content: bytes, content_type: str = "application/octet-stream") -> SimpleUploadedFile:
    return SimpleUploadedFile(name, content, content_type=content_type)


@pytest.fixture
def school(world):
    """Site a with one building, a floor, two zones (helpers: member, deputy: lead), a room, an assembly point."""
    site, people = world.a.site, world.a.people
    building = actions.save_building(actor=None, site=site, name="Haus A", code="A")
    floor = actions.save_floor(actor=None, building=building, name="Erdgeschoss", level=0)
    west = actions.save_zone(actor=None, floor=floor, name="West wing", code="A-0-W",
                             helpers=[people[Role.MEMBER]], deputies=[people[Role.LEAD]])
    east = actions.save_zone(actor=None, floor=floor, name="East wing", code="A-0-O", neighbours=[west])
    actions.save_room(actor=None, zone=west, name="Room 001")
    point = actions.save_assembly_point(actor=None, site=site, name="Schoolyard", latitude=52.52, longitude=13.40,
                                        capacity=300, zones=[west, east])
    return {"building": building, "floor": floor, "west": west, "east": east, "point": point}


# Pages: who sees and changes what ------------------------------------------------------------------

def test_an_admin_builds_the_structure_through_the_pages(signed_in, world):
    client = signed_in(Role.ADMIN)
    assert client.post("/structure/buildings/new/", {"name": "Main building", "code": "A"}).status_code == 302
    building = Building.objects.get(site=world.a.site, name="Main building")
    response = client.post(f"/structure/buildings/{building.pk}/floors/new/", {"name": "Ground floor", "level": "0"})
    floor = Floor.objects.get(building=building)
    assert response.status_code == 302 and response["Location"] == f"/structure/floors/{floor.pk}/"
    helper, deputy = world.a.people[Role.MEMBER], world.a.people[Role.LEAD]
    response = client.post(f"/structure/floors/{floor.pk}/zones/new/", {
        "name": "West wing", "code": "A-0-W", "helpers": [helper.pk], "deputies": [deputy.pk]})
    assert response.status_code == 302
    zone = Zone.objects.get(floor=floor)
    assert set(ZoneDuty.objects.filter(zone=zone).values_list("membership_id", "deputy")) == {
        (helper.pk, False), (deputy.pk, True)}
    assert client.post(f"/structure/zones/{zone.pk}/rooms/new/", {"name": "Room 1.04"}).status_code == 302
    response = client.post("/structure/assembly-points/new/", {
        "name": "Sports field", "latitude": "52.5163", "longitude": "13.3777", "capacity": "400",
        "zones": [zone.pk]})
    assert response.status_code == 302
    point = AssemblyPoint.objects.get(site=world.a.site)
    assert list(point.zones.all()) == [zone] and point.capacity == 400

    page = client.get("/structure/").content.decode()
    for text in ("Main building", "Ground floor", "West wing", "A-0-W", "Room 1.04", "Sports field",
                 helper.full_name, deputy.full_name):
        assert text in page
    assert 'href="/structure/"' in page  # the navigation link


def test_the_pages_refuse_bad_input_with_the_reason(signed_in, school):
    client = signed_in(Role.ADMIN)
    response = client.post(f"/structure/floors/{school['floor'].pk}/zones/new/", {"name": "Other", "code": "A-0-W"})
    assert response.status_code == 400
    assert "Another zone of this site has this code." in response.content.decode()
    response = client.post("/structure/buildings/new/", {"name": "Haus A"})
    assert response.status_code == 400 and "already exists" in response.content.decode()
    response = client.post("/structure/assembly-points/new/", {"name": "Half", "latitude": "52.5"})
    assert response.status_code == 400 and "both latitude and longitude" in response.content.decode()


def test_a_person_cannot_be_helper_and_deputy_of_one_zone(school, world):
    member = world.a.people[Role.MEMBER]
    with pytest.raises(actions.ValidationError):
        actions.save_zone(actor=None, floor=school["floor"], zone=school["west"], name="West wing",
                          helpers=[member], deputies=[member])


@pytest.mark.parametrize("role", [Role.LEAD, Role.MEMBER, Role.EMPLOYEE, Role.GUEST])
def test_people_who_may_only_look_see_the_structure_and_cannot_change_it(signed_in, school, role):
    client = signed_in(role)
    page = client.get("/structure/")
    assert page.status_code == 200 and "West wing" in page.content.decode()
    assert "New building" not in page.content.decode()
    assert client.get(f"/structure/floors/{school['floor'].pk}/").status_code == 200
    for url in ("/structure/buildings/new/", f"/structure/buildings/{school['building'].pk}/",
                f"/structure/zones/{school['west'].pk}/", "/structure/import/", "/structure/export.csv",
                "/structure/assembly-points/new/"):
        assert client.get(url).status_code == 403, url
    assert client.post(f"/structure/zones/{school['west'].pk}/delete/").status_code == 403
    assert client.post(f"/structure/floors/{school['floor'].pk}/markers/new/",
                       {"kind": "exit", "x": ".5", "y": ".5"}).status_code == 403
    assert Zone.objects.filter(pk=school["west"].pk).exists() and not Marker.objects.exists()


def test_helpers_names_are_shown_only_to_those_who_see_the_directory(signed_in, school, world):
    helper = world.a.people[Role.MEMBER].full_name
    assert helper in signed_in(Role.LEAD).get("/structure/").content.decode()
    page = signed_in(Role.EMPLOYEE).get("/structure/").content.decode()
    assert helper not in page and "2 people" in page


def test_an_admin_deletes_a_building_with_everything_in_it(signed_in, school, world):
    client = signed_in(Role.ADMIN)
    assert client.post(f"/structure/buildings/{school['building'].pk}/delete/").status_code == 302
    assert not Zone.objects.filter(site=world.a.site).exists() and not Room.objects.filter(site=world.a.site).exists()
    assert AuditEntry.objects.filter(action="building.deleted", object_id=str(school["building"].pk)).exists()


def test_every_change_is_in_the_audit_trail(signed_in, school, world):
    client = signed_in(Role.ADMIN)
    west = school["west"]
    client.post(f"/structure/zones/{west.pk}/", {"name": "West wing", "code": "A-0-WEST",
                                                  "helpers": [world.a.people[Role.EMPLOYEE].pk]})
    entry = AuditEntry.objects.filter(action="zone.updated", object_id=str(west.pk)).latest("pk")
    assert entry.actor == world.a.people[Role.ADMIN].user and entry.site == world.a.site
    assert entry.changes["code"] == ["A-0-W", "A-0-WEST"]
    assert entry.changes["helpers"] == [[str(world.a.people[Role.MEMBER].pk)], [str(world.a.people[Role.EMPLOYEE].pk)]]
    assert entry.changes["deputies"] == [[str(world.a.people[Role.LEAD].pk)], []]
    created = set(AuditEntry.objects.filter(site=world.a.site).values_list("action", flat=True))
    assert {"building.created", "floor.created", "zone.created", "room.created", "assembly_point.created"} <= created


def test_actions_refuse_objects_of_another_site(school, world):
    other = world.b.people[Role.MEMBER]
    with pytest.raises(actions.PermissionDenied):
        actions.save_zone(actor=None, floor=school["floor"], zone=school["west"], name="West", helpers=[other])
    foreign = actions.save_building(actor=None, site=world.b.site, name="Foreign")
    with pytest.raises(actions.PermissionDenied):
        actions.save_floor(actor=None, building=school["building"], floor=Floor(site=world.b.site, building=foreign),
                           name="x")
    with pytest.raises(actions.PermissionDenied):
        actions.save_building(actor=world.a.people[Role.ADMIN].user, site=world.b.site, name="Sneaky")


# Floor plans ---------------------------------------------------------------------------------------

def _upload_plan(client, floor, name, content, content_type="application/octet-stream"):
    return client.post(f"/structure/floors/{floor.pk}/plan/upload/", {"file": upload(name, content, content_type)})


def test_a_png_plan_is_stored_re_encoded_and_served_to_the_site_only(signed_in, school, client):
    floor = school["floor"]
    admin = signed_in(Role.ADMIN)
    assert _upload_plan(admin, floor, "plan.png", image_bytes("PNG"), "image/png").status_code == 302
    floor.refresh_from_db()
    assert (floor.plan_type, floor.plan_width, floor.plan_height) == ("image/png", 800, 500)
    assert AuditEntry.objects.filter(action="floor.plan_set", object_id=str(floor.pk)).exists()
    response = signed_in(Role.GUEST).get(f"/structure/floors/{floor.pk}/plan")
    assert response.status_code == 200 and response["Content-Type"] == "image/png"
    assert response["Cache-Control"].startswith("private")
    assert Image.open(io.BytesIO(response.content)).size == (800, 500)
    page = signed_in(Role.GUEST).get(f"/structure/floors/{floor.pk}/").content.decode()
    assert f"/structure/floors/{floor.pk}/plan?v=" in page


def test_a_pdf_plans_first_page_becomes_a_png(signed_in, school):
    floor = school["floor"]
    pages = [Image.new("RGB", (1190, 842), "white"), Image.new("RGB", (600, 600), "black")]
    out = io.BytesIO()
    pages[0].save(out, "PDF", save_all=True, append_images=pages[1:])
    response = _upload_plan(signed_in(Role.ADMIN), floor, "grundriss.pdf", out.getvalue(), "application/pdf")
    assert response.status_code == 302
    floor.refresh_from_db()
    assert floor.plan_type == "image/png" and bytes(floor.plan).startswith(b"\x89PNG")
    assert floor.plan_width > floor.plan_height  # the landscape first page, not the square second one
    assert max(floor.plan_width, floor.plan_height) <= plans.MAX_SIDE


def test_a_photo_stays_a_jpeg_without_its_metadata_and_is_made_smaller(signed_in, school):
    floor = school["floor"]
    exif = Image.Exif()
    exif[0x010E] = "Secret description"
    exif[0x0131] = "SecretCamera"
    photo = image_bytes("JPEG", size=(5000, 2500), exif=exif.tobytes(), comment=b"a comment")
    response = _upload_plan(signed_in(Role.ADMIN), floor, "photo.png", photo, "image/png")  # the name lies
    assert response.status_code == 302
    floor.refresh_from_db()
    stored = bytes(floor.plan)
    assert floor.plan_type == "image/jpeg" and (floor.plan_width, floor.plan_height) == (4000, 2000)
    assert b"Secret" not in stored and b"a comment" not in stored
    assert not Image.open(io.BytesIO(stored)).getexif()


@pytest.mark.parametrize("name, content, message", [
    ("plan.png", b"this is not an image at all", "not a PNG, JPEG or PDF file"),
    ("plan.pdf", b"%PDF-1.7\n garbage that is no PDF", "This PDF file cannot be read"),
    ("plan.gif", b"GIF89a" + image_bytes("GIF")[6:], "not a PNG, JPEG or PDF file"),
    ("plan.png", image_bytes("PNG")[:200], "not a PNG, JPEG or PDF file"),  # cut off
    ("plan.png", b"\x89PNG" + b"\0" * (plans.MAX_BYTES + 1), "larger than 10 MB"),
])
def test_a_file_that_is_no_plan_is_refused_with_the_reason(signed_in, school, name, content, message):
    floor = school["floor"]
    response = _upload_plan(signed_in(Role.ADMIN), floor, name, content)
    assert response.status_code == 400
    assert message in response.content.decode()
    floor.refresh_from_db()
    assert not floor.plan_type


def test_an_image_claiming_too_many_pixels_is_refused_before_it_is_decoded(school):
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    # A valid PNG header for 30,000 × 30,000 pixels, with a tiny (incomplete) image data stream.
    bomb = (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 30000, 30000, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(b"\0" * 1000)) + chunk(b"IEND", b""))
    with pytest.raises(actions.ValidationError, match="too many pixels"):
        actions.set_floor_plan(actor=None, floor=school["floor"], content=bomb)


def test_an_admin_places_and_removes_markers(signed_in, school):
    floor = school["floor"]
    client = signed_in(Role.ADMIN)
    _upload_plan(client, floor, "plan.png", image_bytes("PNG"))
    response = client.post(f"/structure/floors/{floor.pk}/markers/new/",
                           {"kind": "exit", "label": "Exit 2", "x": "0.25", "y": "0.75"})
    assert response.status_code == 302
    marker = Marker.objects.get(floor=floor)
    assert (marker.kind, marker.label, marker.x, marker.y) == ("exit", "Exit 2", 0.25, 0.75)
    page = signed_in(Role.EMPLOYEE).get(f"/structure/floors/{floor.pk}/").content.decode()
    assert 'cx="25.00%"' in page and "Exit 2" in page and "Emergency exit" in page
    client = signed_in(Role.ADMIN)  # the same test client, signed in again
    response = client.post(f"/structure/markers/{marker.pk}/", {"kind": "exit", "label": "Exit 3", "x": "0.3",
                                                                "y": "0.75"})
    assert response.status_code == 302 and response["Location"] == f"/structure/floors/{floor.pk}/"
    marker.refresh_from_db()
    assert (marker.label, marker.x) == ("Exit 3", 0.3)
    assert AuditEntry.objects.get(action="marker.updated").changes == {"label": ["Exit 2", "Exit 3"], "x": [0.25, 0.3]}
    off_plan = client.post(f"/structure/floors/{floor.pk}/markers/new/", {"kind": "exit", "x": "1.5", "y": "0"})
    assert off_plan.status_code == 400 and Marker.objects.count() == 1
    assert client.post(f"/structure/markers/{marker.pk}/delete/").status_code == 302
    assert not Marker.objects.exists()
    assert {"marker.created", "marker.deleted"} <= set(AuditEntry.objects.values_list("action", flat=True))


# CSV -----------------------------------------------------------------------------------------------

def test_the_structure_goes_out_as_csv_and_comes_back_the_same(signed_in, school, world):
    actions.save_room(actor=None, zone=school["west"], name="=HYPERLINK(1)")
    client = signed_in(Role.ADMIN)
    response = client.get("/structure/export.csv")
    assert response.status_code == 200 and response["Content-Type"].startswith("text/csv")
    text = response.content.decode()
    rows = list(csv.reader(io.StringIO(text)))
    assert rows[0] == ["building", "floor", "level", "zone", "code", "rooms", "assembly_point"]
    assert ["Haus A", "Erdgeschoss", "0", "West wing", "A-0-W", "'=HYPERLINK(1)|Room 001", "Schoolyard"] in rows
    assert AuditEntry.objects.filter(action="structure.exported").exists()

    # Into another site: the same structure appears there.
    other = world.a2.site
    result = import_structure(actor=None, site=other, text=text)
    assert result["created"] == 1 + 1 + 2 + 2 + 1  # building, floor, zones, rooms, assembly point
    assert export_structure(actor=None, site=other) == text
    assert Room.objects.get(site=other, name="=HYPERLINK(1)")
    # Read back into its own site, nothing changes.
    assert import_structure(actor=None, site=world.a.site, text=text) == {"created": 0, "updated": 0}


def test_an_import_adds_what_is_missing_and_updates_codes(signed_in, school, world):
    text = ("building;floor;level;zone;code;rooms;assembly_point\n"
            "Haus A;Erdgeschoss;0;West wing;A-0-WEST;Room 001|Room 002;Schoolyard\n"
            "Haus A;1. Obergeschoss;1;Nord;A-1-N;Room 101;Sports field\n")
    client = signed_in(Role.ADMIN)
    response = client.post("/structure/import/", {"file": upload("s.csv", text.encode())})
    assert response.status_code == 302
    west = Zone.objects.get(pk=school["west"].pk)
    assert west.code == "A-0-WEST" and set(west.rooms.values_list("name", flat=True)) == {"Room 001", "Room 002"}
    assert west.duties.count() == 2  # the helpers stay
    north = Zone.objects.get(site=world.a.site, code="A-1-N")
    assert north.floor.level == 1 and list(north.assembly_points.values_list("name", flat=True)) == ["Sports field"]
    assert AuditEntry.objects.filter(action="structure.imported").exists()


def test_an_import_with_bad_rows_reports_them_by_line_and_writes_nothing(signed_in, school, world):
    text = ("building,floor,level,zone,code,rooms,assembly_point\n"
            "Haus B,Halle,0,Halle,B-0,,\n"
            ",Keller,-1,Technik,,,\n"
            "Haus B,Halle,first,Umkleide,,,\n"
            "Haus B,Halle,0,Geräteraum,A-0-W,,\n")
    client = signed_in(Role.ADMIN)
    response = client.post("/structure/import/", {"file": upload("s.csv", text.encode())})
    body = response.content.decode()
    assert response.status_code == 400
    assert "Line 3" in body and "“building” is empty" in body
    assert "Line 4" in body and "whole number" in body
    assert not Building.objects.filter(name="Haus B").exists()
    # A clash with the database is found when the row is applied: its line is named, nothing stays.
    response = client.post("/structure/import/", {"file": upload("s.csv", (text.splitlines()[0] + "\n"
                                                                            + text.splitlines()[1] + "\n"
                                                                            + text.splitlines()[4]).encode())})
    assert response.status_code == 400 and "Line 3" in response.content.decode()
    assert "Another zone of this site has this code." in response.content.decode()
    assert not Building.objects.filter(name="Haus B").exists()


# The demo ------------------------------------------------------------------------------------------

def test_the_demo_has_a_school_with_plans_helpers_and_assembly_points(db, settings):
    settings.LANGUAGE_CODE = "en"
    seed_demo()
    site = Site.objects.get(name="Headquarters")
    buildings = list(Building.objects.for_site(site))
    assert [b.name for b in buildings] == ["Building A", "Building B – sports hall"]
    assert Floor.objects.for_site(site).filter(building=buildings[0]).count() == 3
    floors = Floor.objects.for_site(site)
    assert all(f.plan_type == "image/png" and f.plan_width and f.markers.exists() for f in floors)
    zone = Zone.objects.for_site(site).get(code="A-1-W")
    member, lead = (Membership.objects.get(site=site, user__email_index=email_index(f"{local}@{DEMO_DOMAIN}"))
                    for local in ("member", "lead"))
    assert set(zone.duties.values_list("membership_id", "deputy")) == {(member.pk, False), (lead.pk, True)}
    assert zone.rooms.count() == 3 and zone.neighbours.exists()
    points = {p.name: p for p in AssemblyPoint.objects.for_site(site)}
    assert set(points) == {"Schoolyard (north)", "Sports field"}
    assert points["Schoolyard (north)"].zones.count() == 7 and points["Sports field"].capacity == 250
    assert 52 < points["Sports field"].latitude < 53 and 13 < points["Sports field"].longitude < 14


def test_the_audit_trail_names_structure_changes_in_words(signed_in, school, world):
    client = signed_in(Role.ADMIN)
    west = school["west"]
    client.post(f"/structure/zones/{west.pk}/", {"name": "West wing", "code": "A-0-W",
                                                  "helpers": [world.a.people[Role.EMPLOYEE].pk],
                                                  "neighbours": [school["east"].pk]})
    page = client.get("/audit/").content.decode()
    for text in ("Zone changed", "Evacuation helpers", world.a.people[Role.EMPLOYEE].full_name,
                 "Assembly point added", "Zones that evacuate here", "East wing"):
        assert text in page, text


def test_places_are_not_deleted_while_an_alarm_is_active(signed_in, school, world):
    alarm, _ = trigger_alarm(site=world.a.site, scenario=fire_scenario(world.a.site), user=None, location_text="Hall")
    client = signed_in(Role.ADMIN)
    response = client.post(f"/structure/zones/{school['west'].pk}/delete/", follow=True)
    assert "While an alarm is active" in response.content.decode()
    client.post(f"/structure/buildings/{school['building'].pk}/delete/")
    assert Zone.objects.filter(pk=school["west"].pk).exists() and Building.objects.filter(site=world.a.site).exists()
    end_alarm(alarm=alarm, user=None, reason="Drill over")
    client.post(f"/structure/zones/{school['west'].pk}/delete/")
    assert not Zone.objects.filter(pk=school["west"].pk).exists()


def test_a_zone_is_placed_on_its_floors_plan_with_all_four_numbers_or_none(signed_in, school, world):
    client = signed_in(Role.ADMIN)
    url = f"/structure/floors/{school['floor'].pk}/zones/new/"
    response = client.post(url, {"name": "North", "area_x": "0.1", "area_y": "0.2"})
    assert response.status_code == 400 and "Give all four" in response.content.decode()
    response = client.post(url, {"name": "North", "area_x": "0.8", "area_y": "0", "area_w": "0.5", "area_h": "1"})
    assert response.status_code == 400 and "The area must lie on the plan" in response.content.decode()
    assert client.post(url, {"name": "North", "area_x": "0.1", "area_y": "0.2", "area_w": "0.3",
                             "area_h": "0.4"}).status_code == 302
    assert Zone.objects.get(name="North").area == (0.1, 0.2, 0.3, 0.4)
