import os

from rest_framework.test import APITestCase

from .models import Note


class NotesAPITests(APITestCase):
    def test_create_list_retrieve(self):
        resp = self.client.post(
            "/api/notes/", {"title": "first", "body": "hello"}, format="json"
        )
        self.assertEqual(resp.status_code, 201, resp.content)
        note_id = resp.json()["id"]
        self.assertEqual(resp.json()["title"], "first")
        self.assertIn("created", resp.json())

        resp = self.client.get("/api/notes/")
        self.assertEqual(resp.status_code, 200)
        self.assertEqual([n["id"] for n in resp.json()], [note_id])

        resp = self.client.get(f"/api/notes/{note_id}/")
        self.assertEqual(resp.status_code, 200)
        self.assertEqual(resp.json()["body"], "hello")

    def test_update_and_delete(self):
        note = Note.objects.create(title="old")
        resp = self.client.patch(f"/api/notes/{note.id}/", {"title": "new"}, format="json")
        self.assertEqual(resp.status_code, 200)
        self.assertEqual(resp.json()["title"], "new")
        resp = self.client.delete(f"/api/notes/{note.id}/")
        self.assertEqual(resp.status_code, 204)
        self.assertFalse(Note.objects.exists())
        self.assertEqual(self.client.get(f"/api/notes/{note.id}/").status_code, 404)

    def test_create_requires_title(self):
        resp = self.client.post("/api/notes/", {"body": "no title"}, format="json")
        self.assertEqual(resp.status_code, 400)
        self.assertIn("title", resp.json())

    def test_list_is_newest_first(self):
        a = Note.objects.create(title="a")
        b = Note.objects.create(title="b")
        ids = [n["id"] for n in self.client.get("/api/notes/").json()]
        self.assertEqual(ids, [b.id, a.id])


class UtilityEndpointTests(APITestCase):
    def test_health(self):
        resp = self.client.get("/api/health")
        self.assertEqual(resp.status_code, 200)
        self.assertEqual(resp.json(), {"status": "ok"})

    def test_whoami(self):
        data = self.client.get("/api/whoami").json()
        self.assertEqual(data["pid"], os.getpid())
        self.assertIsInstance(data["random"], float)
        self.assertIsInstance(data["db_connection"], int)

    def test_alloc(self):
        resp = self.client.get("/api/alloc?mb=2")
        self.assertEqual(resp.status_code, 200)
        self.assertEqual(resp.json()["bytes"], 2 * 1024 * 1024)
        self.assertEqual(self.client.get("/api/alloc?mb=x").status_code, 400)
        self.assertEqual(self.client.get("/api/alloc?mb=-1").status_code, 400)
