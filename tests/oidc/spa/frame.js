// Frames the URL passed as ?src= (the driver passes Tessera's authorize URL).
const src = new URLSearchParams(location.search).get('src');
if (src) document.getElementById('framed').src = src;
